"""A chat request becomes engine jobs (one per choice); finished jobs become vLLM's `chat.completion`.

The prompt is the tokenizer's chat template applied to the messages and tools, encoded without extra
special tokens (as vLLM renders chat prompts). A choice's `token_ids` are exactly the sampled ids, the
end-of-sequence token included when the model emitted one; `message` text is their decoding without
that final token, cut before a matched stop string. With tools in the request and `tool_choice` other
than "none", special tokens are kept in the text (vLLM's hermes parser turns `skip_special_tokens`
off, since some tokenizers mark `<tool_call>` special) and hermes blocks become `tool_calls`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from transformers import PreTrainedTokenizerBase

from agentrun import wire
from agentrun.serving import sampling, toolcalls
from agentrun.serving.engine import Job


class RequestError(ValueError):
    """A request this server cannot serve: answered 400 BadRequestError naming `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


@dataclass(frozen=True)
class Defaults:
    """Sampling defaults for fields a request leaves out: the model's generation config, as vLLM uses it."""

    temperature: float = 1.0
    top_p: float = 1.0


def _template_message(message: wire.Message) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": message.role, "content": wire.text_of(message.content)}
    if message.tool_calls:
        entry["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id is not None:
        entry["tool_call_id"] = message.tool_call_id
    return entry


def prompt_ids(tokenizer: PreTrainedTokenizerBase, request: wire.ChatRequest) -> list[int]:
    """The prompt's token ids: chat template with tools and the generation prompt, then encode."""
    tools = [tool.model_dump(exclude_none=True) for tool in request.tools] if request.tools else None
    try:
        text = tokenizer.apply_chat_template(
            [_template_message(message) for message in request.messages],
            tools=tools,
            add_generation_prompt=True,
            tokenize=False,
        )
    except TemplateError as error:
        raise RequestError(f"the chat template cannot render these messages: {error}", "messages") from error
    try:
        return list(tokenizer.encode(str(text), add_special_tokens=False))
    except TypeError as error:  # a lone UTF-16 surrogate, which no tokenizer encodes: 400, as vLLM answers
        raise RequestError(f"the messages cannot be tokenized (a lone UTF-16 surrogate?): {error}",
                           "messages") from error


def new_jobs(
    request: wire.ChatRequest,
    prompt: list[int],
    *,
    adapter: str | None,
    max_model_len: int,
    defaults: Defaults,
    done: Callable[[Job], None],
) -> list[Job]:
    """One job per requested choice; choice i samples with seed + i (vLLM's rule for n > 1)."""
    if len(prompt) >= max_model_len:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{len(prompt)} input tokens. Please reduce the length of the input messages.", "input_tokens",
        )  # fmt: skip
    requested = request.max_completion_tokens or request.max_tokens
    if requested is not None and len(prompt) + requested > max_model_len:
        raise RequestError(
            f"'max_tokens' or 'max_completion_tokens' is too large: {requested}. This model's maximum context "
            f"length is {max_model_len} tokens and your request has {len(prompt)} input tokens.", "max_tokens",
        )  # fmt: skip
    if request.top_logprobs and not request.logprobs:
        raise RequestError("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs")
    params = sampling.SamplingParams(
        temperature=defaults.temperature if request.temperature is None else request.temperature,
        top_p=defaults.top_p if request.top_p is None else request.top_p,
        top_logprobs=(request.top_logprobs or 0) if request.logprobs else None,
    )
    stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
    return [
        Job(
            prompt_ids=prompt,
            max_new_tokens=requested or max_model_len - len(prompt),
            params=params,
            generator=sampling.new_generator(None if request.seed is None else request.seed + index),
            adapter=adapter,
            stop=tuple(s for s in stop if s),
            done=done,
        )
        for index in range(request.n)
    ]


def _token_entry(tokenizer: PreTrainedTokenizerBase, token_id: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([token_id])
    return {"token": text, "logprob": max(logprob, -9999.0), "bytes": list(text.encode())}


def _logprobs(tokenizer: PreTrainedTokenizerBase, job: Job) -> dict[str, Any]:
    entries = []
    for position, (token_id, logprob) in enumerate(zip(job.token_ids, job.logprobs, strict=True)):
        entry = _token_entry(tokenizer, token_id, logprob)
        alternatives = job.top_logprobs[position] if job.top_logprobs else []
        entry["top_logprobs"] = [_token_entry(tokenizer, alt, value) for alt, value in alternatives]
        entries.append(entry)
    return {"content": entries}


def _choice(index: int, job: Job, request: wire.ChatRequest, tokenizer: PreTrainedTokenizerBase,
            eos_ids: frozenset[int]) -> dict[str, Any]:  # fmt: skip
    parse_tools = bool(request.tools) and request.tool_choice != "none"
    ids = job.token_ids
    if ids and ids[-1] in eos_ids and job.finish_reason == "stop" and job.stop_reason is None:
        ids = ids[:-1]
    text = tokenizer.decode(ids, skip_special_tokens=not parse_tools)
    if job.stop_reason is not None and (cut := text.find(job.stop_reason)) >= 0:
        text = text[:cut]
    parsed = toolcalls.parse(text) if parse_tools else toolcalls.Parsed(text, ())
    tool_calls = [
        {"id": f"chatcmpl-tool-{uuid.uuid4().hex}", "type": "function",
         "function": {"name": name, "arguments": arguments}}
        for name, arguments in parsed.calls
    ]  # fmt: skip
    entry: dict[str, Any] = {
        "index": index,
        "message": {"role": "assistant", "content": parsed.content, "tool_calls": tool_calls},
        "logprobs": _logprobs(tokenizer, job) if job.params.top_logprobs is not None else None,
        "finish_reason": "tool_calls" if tool_calls else job.finish_reason,
        "stop_reason": job.stop_reason,
    }
    if request.return_token_ids:
        entry["token_ids"] = job.token_ids
    return entry


def response_body(
    request: wire.ChatRequest,
    prompt: list[int],
    jobs: Sequence[Job],
    tokenizer: PreTrainedTokenizerBase,
    eos_ids: frozenset[int],
) -> dict[str, Any]:
    """vLLM's `chat.completion` for finished jobs, with `prompt_token_ids`/`token_ids` when asked for."""
    completion_tokens = sum(len(job.token_ids) for job in jobs)
    choices = [_choice(index, job, request, tokenizer, eos_ids) for index, job in enumerate(jobs)]
    return wire.completion_body(
        f"chatcmpl-{uuid.uuid4().hex}", request.model, choices, prompt, completion_tokens, request.return_token_ids
    )
