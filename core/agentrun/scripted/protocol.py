"""The scripted server's side of the wire (`agentrun.wire` holds its shapes): the replies it makes up from a
policy's actions, with fake tokens and log-probabilities.

Prompts are rendered in ChatML (the layout of Qwen's template with hermes tool calls) and encoded with
the fake tokenizer of `tokens`, segment by segment (a message's header, its body, its end), so ids are
reproducible and consistent across turns: the prompt of turn k+1 starts with the prompt of turn k
followed by the completion of turn k, which a real template and tokenizer give in the usual case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from random import Random
from typing import Any

from agentrun.scripted import tokens
from agentrun.scripted.policies import Action, Call
from agentrun.wire import ChatRequest, Message, Tool, completion_body, text_of


def _tool_block(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {arguments}}}\n</tool_call>'


def render_assistant(content: str | None, calls: Sequence[tuple[str, str]]) -> str:
    """The assistant's generated text: content, then one hermes block per (name, arguments JSON)."""
    return "\n".join(([content] if content else []) + [_tool_block(name, args) for name, args in calls])


def prompt_segments(messages: Sequence[Message], tools: Sequence[Tool] | None) -> list[str]:
    """ChatML with the tools in the first message and the generation prompt at the end, as the segments
    the tokenizer encodes one by one (so an assistant body encodes as it did when it was generated)."""
    segments = []
    for index, message in enumerate(messages):
        text = text_of(message.content)
        if index == 0 and tools:
            specs = "\n".join(tool.function.model_dump_json(exclude_none=True) for tool in tools)
            text = f"{text}\n\n# Tools\n\n<tools>\n{specs}\n</tools>"
        if message.role == "assistant":
            calls = [(call.function.name, call.function.arguments) for call in message.tool_calls or ()]
            text = render_assistant(text, calls)
        elif message.role == "tool":
            text = f"<tool_response>\n{text}\n</tool_response>"
        segments += [tokens.IM_START, f"{message.role}\n", text, tokens.IM_END, "\n"]
    return segments + [tokens.IM_START, "assistant\n"]


def _arguments(call: Call) -> str:
    return json.dumps(call.arguments, ensure_ascii=False)


def _alternatives(token_id: int, logprob: float, top: int) -> list[dict[str, Any]]:
    others = [chr(ord("a") + (token_id + k) % 26) for k in range(1, top + 1)]
    return [{"token": o, "logprob": logprob - k, "bytes": [ord(o)]} for k, o in enumerate(others, 1)]


def _token_logprobs(ids: list[int], top: int, rng: Random) -> list[dict[str, Any]]:
    """Made-up log-probabilities; the alternatives in `top_logprobs` are made-up one-letter tokens."""
    entries = []
    for token_id in ids:
        logprob = math.log(0.5 + 0.5 * rng.random())
        text, data = tokens.token_text(token_id)
        alternatives = _alternatives(token_id, logprob, top) if top else []
        entries.append({"token": text, "logprob": logprob, "bytes": data, "top_logprobs": alternatives})
    return entries


def choice(index: int, action: Action, request: ChatRequest, rng: Random) -> tuple[dict[str, Any], int]:
    """One `choices[]` entry for the action, and its completion token count.

    Over `max_new_tokens`, the text is cut and comes back as content with finish_reason "length", the
    way a real server returns a tool call the model did not finish.
    """
    calls = [(call.name, _arguments(call)) for call in action.calls]
    text = render_assistant(action.content, calls)
    ids = tokens.encode_segments([text, tokens.IM_END])
    tool_calls: list[dict[str, Any]] = [
        {"id": f"chatcmpl-tool-{rng.getrandbits(64):016x}", "type": "function", "function": {"name": n, "arguments": a}}
        for n, a in calls
    ]
    content, finish = action.content, "tool_calls" if tool_calls else "stop"
    if len(ids) > request.max_new_tokens:
        ids = ids[: request.max_new_tokens]
        content, tool_calls, finish = tokens.decode(ids), [], "length"
    elif request.tool_choice == "none" and tool_calls:
        content, tool_calls, finish = text, [], "stop"
    entry: dict[str, Any] = {
        "index": index,
        "message": {"role": "assistant", "content": content, "tool_calls": tool_calls},
        "logprobs": {"content": _token_logprobs(ids, request.top_logprobs or 0, rng)} if request.logprobs else None,
        "finish_reason": finish,
        "stop_reason": None,
    }
    if request.return_token_ids:
        entry["token_ids"] = ids
    return entry, len(ids)


def completion(request: ChatRequest, actions: Sequence[Action], rngs: Sequence[Random], model: str) -> dict[str, Any]:
    """The `chat.completion` body for one action per requested choice."""
    prompt_ids = tokens.encode_segments(prompt_segments(request.messages, request.tools))
    choices, generated = [], 0
    for index, (action, rng) in enumerate(zip(actions, rngs, strict=True)):
        entry, count = choice(index, action, request, rng)
        choices.append(entry)
        generated += count
    return completion_body(
        f"chatcmpl-{rngs[0].getrandbits(64):016x}", model, choices, prompt_ids, generated, request.return_token_ids
    )
