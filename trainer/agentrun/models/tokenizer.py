"""The tiny model's tokenizer: a byte-level BPE trained offline on the email task's own text.

It is built the way Qwen's tokenizer is (the same pre-tokenizer regex, so every digit is its own token
and numbers and message ids are copied digit by digit; byte-level, so any text round-trips), with
Qwen's chat special tokens as single ids and Qwen's tool-calling chat template, so the tiny model is a
drop-in stand-in for `Qwen/Qwen3-*` to everything that only sees a chat template and token ids.
The vocabulary is small (2048): the model's embedding then stays a fraction of its parameters.

The training text is what the model will read and write: a synthetic mailbox's emails and questions,
and the oracle's demonstrations rendered through the chat template (tool schemas, tool calls, tool
responses), so the merges cover the JSON boilerplate a turn is made of.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from transformers.utils import chat_template_utils

from agentrun import demonstrations, storage
from agentrun.mailbox import build, schema, writer

VOCAB_SIZE = 2048
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Control tokens: never shown when decoding with skip_special_tokens.
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
# Single ids but ordinary text (as in Qwen's tokenizer): a decoded reply keeps them, and the server's
# hermes parser finds the tool calls in it.
TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
# Qwen2's pre-tokenizer: contractions, words with one leading non-letter, single digits (runs of up to
# DIGITS, as in Llama 3's), punctuation runs.
PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,DIGITS}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
CORPUS_EMAILS = 4000  # mailbox size the tokenizer is trained on (~2 MB of text, a few seconds)
CORPUS_DEMONSTRATIONS = 300
DIGIT_GROUP_REPEATS = 200  # each digit group this often: more than any merge the mail text competes with


def chat_template() -> str:
    """Qwen2.5's tool-calling template (package data beside this module)."""
    return resources.files(__package__).joinpath("chat_template.jinja").read_text(encoding="utf-8")


def train(texts: Iterable[str], vocab_size: int = VOCAB_SIZE, digits: int = 1) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`, wrapped as a transformers tokenizer with the chat template;
    a token holds at most `digits` digits."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE.replace("DIGITS", str(digits))), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TOOL_TOKENS),
        special_tokens=list(SPECIAL_TOKENS),  # ids 0, 1, 2, in Qwen's order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte has a token: nothing is unknown
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,  # a chat turn ends generation, as in Qwen's instruct tokenizers
        pad_token=ENDOFTEXT,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    tokenizer.add_tokens(list(TOOL_TOKENS))
    tokenizer.chat_template = chat_template()
    return tokenizer


def corpus(dataset_dir: Path) -> Iterator[str]:
    """The email task's text: every email, every question and answer, and rendered demonstrations."""
    conn = schema.open_readonly(dataset_dir / schema.EMAILS_DB)
    try:
        for row in conn.execute("SELECT subject, from_address, date, body FROM emails"):
            yield "\n".join(row)
    finally:
        conn.close()
    for scenario in writer.load_scenarios(storage.scenarios_file(dataset_dir)):
        yield f"{scenario.question}\n{scenario.answer}"
    template = chat_template()
    for shown in demonstrations.oracle(dataset_dir, "train", limit=CORPUS_DEMONSTRATIONS):
        rendered, _ = chat_template_utils.render_jinja_template([shown.messages], shown.tools, chat_template=template)
        yield rendered[0]


def digit_groups(digits: int) -> Iterator[str]:
    """Every group of 2 to `digits` digits (leading zeros included), each repeated so that BPE learns
    all of them as tokens, as Llama 3's vocabulary has every group of 1-3 digits: a number or message
    id then always becomes the same short sequence of tokens, whatever its digits."""
    for width in range(2, digits + 1):
        line = " ".join(f"{n:0{width}d}" for n in range(10**width))
        for _ in range(DIGIT_GROUP_REPEATS):
            yield line


def build_tokenizer(seed: int, vocab_size: int = VOCAB_SIZE, digits: int = 1) -> PreTrainedTokenizerFast:
    """Train the tokenizer on a fresh synthetic mailbox made from `seed` (a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="agentrun-tokenizer-") as scratch:
        dataset_dir = Path(scratch)
        build.build("synthetic", dataset_dir, seed=seed, emails=CORPUS_EMAILS)
        return train(itertools.chain(corpus(dataset_dir), digit_groups(digits)), vocab_size, digits)
