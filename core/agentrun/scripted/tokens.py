"""The scripted server's fake tokenizer: word pieces of at most 4 bytes, whose ids are their bytes.

Why not one token per byte: on this task's prompts (JSON tool schemas and results, English text) a byte
per token is ~4x the count of a real BPE tokenizer, and everything downstream scales with the count: the
server's encoding, the size of every reply, the client's parsing and the learner's records. A benchmark
of the rollout path against a byte-level fake measured mostly the fake.

Text is split the way BPE pre-tokenizers split it (special tokens whole; a word with its leading space;
digits in runs of up to 3; runs of punctuation; runs of whitespace), and each piece is cut into chunks of
at most 4 UTF-8 bytes. On the benchmark's conversations that gives 2.7 characters per token (3.3x
fewer tokens than bytes); the pieces alone average 3.6 characters, and a real BPE vocabulary, which
keeps most pieces whole ("Jennifer", " confirmation"), lands in between: the fake errs towards more
tokens. There is no vocabulary:
a chunk's id is its bytes read as a big-endian integer. A chunk that starts with a non-ASCII byte has at
most 3 bytes and a NUL byte is a chunk of its own, so ids are unique and below 2**31; the two special
tokens take 0xFE and 0xFF, bytes that never occur in UTF-8. Hence `decode(encode(text)) == text` for any
text, and the same text gets the same ids in any process, where a real tokenizer's ids are below its
vocabulary size.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_IDS = {IM_START: 0xFF, IM_END: 0xFE}
_SPECIAL_TEXT = {token_id: text for text, token_id in SPECIAL_IDS.items()}

_PIECE = re.compile(
    r"<\|im_start\|>|<\|im_end\|>"  # special tokens
    r"| ?[^\W\d_]+"  # a word, with its leading space
    r"| ?\d{1,3}"  # digits, at most three at a time
    r"| ?(?:[^\s\w]|_)+"  # punctuation and symbols
    r"|\s+(?!\S)|\s+"  # whitespace; a space before a word stays with the word
)


@functools.lru_cache(maxsize=1 << 16)
def _piece_ids(piece: str) -> tuple[int, ...]:
    special = SPECIAL_IDS.get(piece)
    if special is not None:
        return (special,)
    data, ids, start = piece.encode(), [], 0
    while start < len(data):
        first = data[start]
        size = 1 if first == 0 else 4 if first < 0x80 else 3
        ids.append(int.from_bytes(data[start : start + size], "big"))
        start += size
    return tuple(ids)


def encode(text: str) -> list[int]:
    """The token ids of `text`; special tokens in it are single tokens."""
    return [token_id for piece in _PIECE.findall(text) for token_id in _piece_ids(piece)]


@functools.lru_cache(maxsize=1 << 12)
def _segment_ids(segment: str) -> tuple[int, ...]:
    return tuple(encode(segment))


def encode_segments(segments: Iterable[str]) -> list[int]:
    """The ids of each segment, encoded on its own, concatenated: no token spans two segments.

    Segments are cached: a conversation's earlier messages come back in every later request.
    """
    ids: list[int] = []
    for segment in segments:
        ids += _segment_ids(segment)
    return ids


def token_bytes(token_id: int) -> bytes:
    """The bytes of one token (for a special token, its text as UTF-8)."""
    special = _SPECIAL_TEXT.get(token_id)
    if special is not None:
        return special.encode()
    return token_id.to_bytes(max(1, (token_id.bit_length() + 7) // 8), "big")


@functools.lru_cache(maxsize=1 << 16)
def token_text(token_id: int) -> tuple[str, tuple[int, ...]]:
    """One token as a reply's logprobs show it: its text (invalid UTF-8 replaced) and its bytes."""
    data = token_bytes(token_id)
    return data.decode("utf-8", "replace"), tuple(data)


def decode(ids: Iterable[int]) -> str:
    """The text of a sequence of ids; exact for any sequence `encode` produced (invalid UTF-8 is replaced)."""
    return b"".join(token_bytes(token_id) for token_id in ids).decode("utf-8", "replace")
