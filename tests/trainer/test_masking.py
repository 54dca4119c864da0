"""The assistant-only mask: exactly the tokens of the replies (end-of-turn included) are trained."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from transformers import AutoTokenizer, PreTrainedTokenizerBase  # noqa: E402

from agentrun.trainer import masking  # noqa: E402

CALL = {"id": "c1", "type": "function", "function": {"name": "read_email", "arguments": '{"message_id": "<1@x>"}'}}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Who?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"body": "Ann"}'},
    {"role": "assistant", "content": "Ann."},
]


@pytest.fixture(scope="module")
def tok(tiny_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_dir)


def test_mask_covers_exactly_the_replies(tok: PreTrainedTokenizerBase) -> None:
    def ids(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n"
    reply = '<tool_call>\n{"name": "read_email", "arguments": {"message_id": "<1@x>"}}\n</tool_call><|im_end|>'
    between = '\n<|im_start|>user\n<tool_response>\n{"body": "Ann"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'
    answer = "Ann.<|im_end|>"
    pieces = [(prompt, False), (reply, True), (between, False), (answer, True), ("\n", False)]

    encoded = masking.encode(tok, CONVERSATION)

    assert encoded.ids == [i for text, _ in pieces for i in ids(text)]
    assert encoded.trained == [trained for text, trained in pieces for _ in ids(text)]
    first = len(ids(prompt))
    second = first + len(ids(reply)) + len(ids(between))
    trained_at = [position for position, trained in enumerate(encoded.trained) if trained]
    assert trained_at == [*range(first, first + len(ids(reply))), *range(second, second + len(ids(answer)))]
    assert tok.decode([encoded.ids[p] for p in trained_at]) == reply + answer


def test_prompt_pieces_are_what_a_server_would_send(tok: PreTrainedTokenizerBase) -> None:
    pieces = masking.segments(tok, CONVERSATION, tools=None)
    prompt = tok.apply_chat_template(CONVERSATION[:4], tokenize=False, add_generation_prompt=True)
    assert "".join(text for text, _ in pieces[:3]) == prompt
    assert "".join(text for text, _ in pieces) == tok.apply_chat_template(CONVERSATION, tokenize=False)


REWRITING = (  # stamps every user message with the conversation's length: prompts stop being prefixes
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% if m.role == 'user' %} ({{ messages | length }}){% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_that_rewrites_history_is_refused(tiny_dir: Path) -> None:
    rewriting = AutoTokenizer.from_pretrained(tiny_dir)
    rewriting.chat_template = REWRITING
    with pytest.raises(masking.TemplateError, match="message 2"):
        masking.encode(rewriting, CONVERSATION)
