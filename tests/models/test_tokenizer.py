"""The tiny tokenizer: lossless, digit by digit, chat tokens whole, and Qwen's tool-calling template
(with tools as compact signatures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from transformers import AutoTokenizer, PreTrainedTokenizerBase  # noqa: E402

from agentrun.environment import tools  # noqa: E402
from agentrun.models import tokenizer as tokenizers  # noqa: E402


@pytest.fixture(scope="module")
def tok(tiny_dir: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.mark.parametrize("text", [
    "George Boyd at Exelon is handling the confirm for Shrike.",
    '{"message_id": "<93898619.1075771871405.JavaMail.evans@thyme>", "body": "Hi\\n\\n-\\nJ"}',
    "Zürich café — naïve 😀 \t tabs\r\nand  double  spaces ",
])
def test_text_round_trips(tok: PreTrainedTokenizerBase, text: str) -> None:
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_every_digit_is_its_own_token(tok: PreTrainedTokenizerBase) -> None:
    ids = tok.encode("1075771871405", add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == list("1075771871405")


def test_digit_groups_of_up_to_three_are_whole_tokens() -> None:
    grouped = tokenizers.build_tokenizer(seed=0, vocab_size=4096, digits=3)
    for number, groups in [("1075771871405", ["107", "577", "187", "140", "5"]), ("007", ["007"]), ("42", ["42"])]:
        ids = grouped.encode(number, add_special_tokens=False)
        assert grouped.convert_ids_to_tokens(ids) == groups
    message_id = "<93898619.1075771871405.JavaMail.evans@thyme>"
    assert grouped.decode(grouped.encode(message_id, add_special_tokens=False)) == message_id


@pytest.mark.parametrize("token", tokenizers.SPECIAL_TOKENS + tokenizers.TOOL_TOKENS)
def test_chat_tokens_are_single_ids(tok: PreTrainedTokenizerBase, token: str) -> None:
    ids = tok.encode(f"a{token}b", add_special_tokens=False)
    assert len(ids) == 3 and tok.convert_ids_to_tokens(ids[1]) == token


def test_vocabulary_size_and_roles(tok: PreTrainedTokenizerBase) -> None:
    assert len(tok) == tokenizers.VOCAB_SIZE
    assert (tok.eos_token, tok.pad_token) == (tokenizers.IM_END, tokenizers.ENDOFTEXT)
    # Tool tags survive skip_special_tokens: a server's parser finds them in the decoded reply.
    ids = tok.encode("<tool_call>x</tool_call><|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<tool_call>x</tool_call>"


TOOLS = [{"type": "function", "function": {"name": "read_email", "description": "Read one email.",
                                           "parameters": {"type": "object", "properties": {}}}}]
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Who?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "read_email", "arguments": '{"message_id": "<1.2@x>"}'}},
        {"id": "c2", "type": "function", "function": {"name": "read_email", "arguments": {"message_id": "<3@x>"}}},
    ]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"body": "Ann"}'},
    {"role": "tool", "tool_call_id": "c2", "content": '{"error": "none"}'},
    {"role": "assistant", "content": "Ann."},
]
RENDERED = (
    "<|im_start|>system\n# Tools\nread_email(): Read one email.\n\n"
    'Call a function as <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\n'
    "Be brief.<|im_end|>\n"
    "<|im_start|>user\nWho?<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "read_email", "arguments": {"message_id": "<1.2@x>"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "read_email", "arguments": {"message_id": "<3@x>"}}\n</tool_call><|im_end|>\n'
    '<|im_start|>user\n<tool_response>\n{"body": "Ann"}\n</tool_response>\n'
    '<tool_response>\n{"error": "none"}\n</tool_response><|im_end|>\n'
    "<|im_start|>assistant\nAnn.<|im_end|>\n"
)


def test_template_renders_tools_calls_and_responses(tok: PreTrainedTokenizerBase) -> None:
    assert tok.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False) == RENDERED


def test_tools_render_as_one_signature_line_each(tok: PreTrainedTokenizerBase) -> None:
    """Optional arguments end in `?`, arrays name their items' type, and each line is far shorter than
    the JSON schema it stands for (the prompt every turn re-reads)."""
    text = tok.apply_chat_template([CONVERSATION[1]], tools=tools.TOOL_SCHEMAS, tokenize=False)
    lines = text.split("\n")
    assert lines[1] == "# Tools"  # before any system message: conversations of other inboxes share it
    assert lines[2:5] == [
        "search_emails(keywords: array of string, from_addr?: string, to_addr?: string, sent_after?: string, "
        "sent_before?: string, max_results?: integer): " + tools.TOOL_SCHEMAS[0]["function"]["description"],
        "read_email(message_id: string): " + tools.TOOL_SCHEMAS[1]["function"]["description"],
        "return_final_answer(answer: string, sources: array of string): "
        + tools.TOOL_SCHEMAS[2]["function"]["description"],
    ]
    schemas = "\n".join(json.dumps(schema) for schema in tools.TOOL_SCHEMAS)
    rendered = "\n".join(lines[2:5])
    assert len(tok.encode(rendered)) < len(tok.encode(schemas)) / 3


def test_generation_prompt_opens_an_assistant_turn(tok: PreTrainedTokenizerBase) -> None:
    prompt = tok.apply_chat_template(CONVERSATION[:2], tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n")
    assert RENDERED.startswith(prompt)


def test_without_tools_the_system_message_stands_alone(tok: PreTrainedTokenizerBase) -> None:
    text = tok.apply_chat_template([CONVERSATION[0], CONVERSATION[1]], tokenize=False)
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho?<|im_end|>\n"
