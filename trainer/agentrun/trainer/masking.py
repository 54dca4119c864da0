"""Token ids of a conversation and the mask of the tokens the model is trained on: its own turns.

The conversation is rendered through the model's chat template prefix by prefix: before each assistant
message, the rendering of everything so far with the generation prompt is the prompt a server would
send; what the next rendering adds up to and including the end-of-turn token is what the model
generated. Each piece is tokenised on its own, as a server tokenises the prompt and appends the
generated ids, so no token straddles the boundary between prompt and reply, and the trained tokens are
exactly the ones a rollout would have sampled. System, user and tool tokens, and the template's text
between turns, are masked out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase


class TemplateError(ValueError):
    """The chat template does not render a conversation as a sequence of growing prefixes."""


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    trained: list[bool]  # one per id: True for tokens of assistant replies (end-of-turn included)


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None,
    generation_prompt: bool,
) -> str:
    text = tokenizer.apply_chat_template(
        list(messages), tools=tools or None, tokenize=False, add_generation_prompt=generation_prompt
    )
    assert isinstance(text, str)
    return text


def segments(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, is_assistant_reply) pieces, in order."""
    end_of_turn = tokenizer.eos_token
    pieces: list[tuple[str, bool]] = []
    consumed = ""  # the rendering so far, already cut into pieces
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], tools, generation_prompt=True)
        with_reply = _render(tokenizer, messages[: index + 1], tools, generation_prompt=False)
        if not prompt.startswith(consumed) or not with_reply.startswith(prompt):
            raise TemplateError(f"the chat template does not render message {index} after its prompt")
        reply_end = with_reply.find(end_of_turn, len(prompt))
        if reply_end < 0:
            raise TemplateError(f"assistant message {index} is not closed by {end_of_turn!r}")
        reply_end += len(end_of_turn)
        pieces += [(prompt[len(consumed) :], False), (with_reply[len(prompt) : reply_end], True)]
        consumed = with_reply[:reply_end]
    rendered = _render(tokenizer, messages, tools, generation_prompt=False)
    if not rendered.startswith(consumed):
        raise TemplateError("the chat template renders the whole conversation differently from its prefixes")
    rest = rendered[len(consumed) :]
    return [(text, trained) for text, trained in [*pieces, (rest, False)] if text]


def encode(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> Encoded:
    """Token ids of the whole conversation and which of them are trained (see the module docstring)."""
    ids: list[int] = []
    trained: list[bool] = []
    for text, is_reply in segments(tokenizer, messages, tools):
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        trained += [is_reply] * len(piece)
    return Encoded(ids, trained)
