"""Hermes tool calls out of generated text, as vLLM's `--tool-call-parser hermes` extracts them.

Qwen-family templates teach the model to answer a tool call as
`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`. The parser mirrors vLLM's: every
block (an unterminated last block included) must be a JSON object with `name` and `arguments`, else
nothing is a tool call and the whole text comes back as content; content is the text before the first
block, `None` when empty; arguments are re-serialised as a JSON string (the OpenAI wire format).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

START = "<tool_call>"
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    content: str | None
    calls: tuple[tuple[str, str], ...]  # (name, arguments as a JSON string)


def parse(text: str) -> Parsed:
    """The content and tool calls of a completion; text that does not parse is all content."""
    if START not in text:
        return Parsed(text, ())
    calls = []
    for closed, open_ended in _BLOCK.findall(text):
        try:
            call = json.loads(closed or open_ended)
            name, arguments = call["name"], call["arguments"]
        except (ValueError, TypeError, KeyError):
            return Parsed(text, ())
        if not isinstance(name, str):
            return Parsed(text, ())
        calls.append((name, json.dumps(arguments, ensure_ascii=False)))
    content = text[: text.find(START)]
    return Parsed(content or None, tuple(calls))
