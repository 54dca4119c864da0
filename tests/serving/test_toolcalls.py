"""The hermes parser on hand-written completions."""

from __future__ import annotations

import json

from agentrun.serving import toolcalls


def test_blocks_become_calls_with_json_string_arguments() -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "read_email", "arguments": {"message_id": "<a@b>"}}\n</tool_call>'
    assert toolcalls.parse(text) == toolcalls.Parsed("Let me look.\n", (("read_email", '{"message_id": "<a@b>"}'),))


def test_several_blocks_and_an_unterminated_last_one() -> None:
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {"x": 1}}'
    assert toolcalls.parse(text) == toolcalls.Parsed(None, (("a", "{}"), ("b", '{"x": 1}')))


def test_text_that_does_not_parse_is_all_content() -> None:
    for text in (
        "no call here",
        '<tool_call>{"name": "a", "arguments": {</tool_call>',  # broken JSON
        '<tool_call>{"name": "a"}</tool_call>',  # no arguments
        '<tool_call>["a", {}]</tool_call>',  # not an object
        '<tool_call>{"name": 3, "arguments": {}}</tool_call>',
        '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>oops</tool_call>',  # one bad block
    ):
        assert toolcalls.parse(text) == toolcalls.Parsed(text, ())


def test_a_lone_surrogate_the_model_wrote_survives_parsing_and_the_reply() -> None:
    """A model can write `"\\ud83d"` inside its call; the reply carries it back instead of failing (500)."""
    from agentrun.rollout import trajectory
    from agentrun.serving import app

    text = '<tool_call>{"name": "return_final_answer", "arguments": {"answer": "\\ud83d", "sources": []}}</tool_call>'
    (name, arguments), = toolcalls.parse(text).calls
    assert json.loads(arguments) == {"answer": "\ud83d", "sources": []}
    reply = app._json({"choices": [{"message": {"tool_calls": [{"function": {"name": name, "arguments": arguments}}]}}]})
    assert trajectory.from_json(reply.body)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == arguments
