"""The scripted server's fake tokenizer: exact, deterministic, bounded ids, realistic counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentrun.scripted import tokens


@given(st.text())
def test_any_text_round_trips_with_ids_below_2_31(text: str) -> None:
    ids = tokens.encode(text)
    assert tokens.decode(ids) == text
    assert all(0 <= token_id < 2**31 for token_id in ids)


@given(st.lists(st.text(), max_size=6))
def test_segments_encode_on_their_own(segments: list[str]) -> None:
    ids = tokens.encode_segments(segments)
    assert ids == [token_id for segment in segments for token_id in tokens.encode(segment)]
    assert tokens.decode(ids) == "".join(segments)


def test_special_tokens_are_single_tokens() -> None:
    ids = tokens.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == tokens.SPECIAL_IDS[tokens.IM_START] and ids[-1] == tokens.SPECIAL_IDS[tokens.IM_END]
    assert tokens.token_bytes(ids[-1]) == b"<|im_end|>"


def test_words_keep_their_space_and_long_words_are_cut_in_4_bytes() -> None:
    assert [tokens.token_bytes(t) for t in tokens.encode("the confirmation, 1075649")] == [
        b"the", b" con", b"firm", b"atio", b"n", b",", b" 107", b"564", b"9",
    ]


def test_english_and_json_take_far_fewer_tokens_than_bytes() -> None:
    text = (
        'Hello Jennifer, the hotel confirmation number for Tokyo is DY54776. '
        '[{"message_id": "<55182908.1075649032927.JavaMail.evans@thyme>", "snippet": "Talked to Victoria"}]'
    )
    assert 2.5 <= len(text) / len(tokens.encode(text)) <= 4.0
