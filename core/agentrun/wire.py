"""The OpenAI chat-completions wire format as vLLM speaks it, written once: the request a server
validates (`ChatRequest`), the reply a client validates (`Completion`), the reply's envelope and vLLM's
error body. The rollout client, the embedded server and the scripted test server all use it.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_MAX_TOKENS = 32768  # a request without a limit: vLLM's default is what is left of the context


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send, and servers answer, more than is read here


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionSpec(_Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Wire):
    type: Literal["function"]
    function: FunctionSpec


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: dict[str, str]


class ChatRequest(BaseModel):
    """The request fields vLLM's chat endpoint accepts that agentrun's servers read; other fields are
    ignored, as vLLM ignores (and logs) fields it does not know."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    temperature: float | None = Field(None, ge=0.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=64)
    seed: int | None = None
    stop: str | list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    return_token_ids: bool = False
    stream: Literal[False] | None = None  # agentrun's servers do not stream

    @property
    def max_new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS


def error_body(message: str, err_type: str, code: int, param: str | None = None) -> dict[str, Any]:
    """vLLM's `ErrorResponse`: `code` is the HTTP status, `type` the error class name."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def validation_error_body(error: ValidationError) -> dict[str, Any]:
    """A 400 body naming the first offending field (`messages.2.role`), as `param` and in the message."""
    first = error.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return error_body(f"invalid request field {field!r}: {first['msg']}", "BadRequestError", 400, field)


def text_of(content: object) -> str:
    """A message's text: the string, or the text parts of a list of content parts joined."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


# The reply, as far as a trajectory keeps it (other fields are ignored).


class ReplyMessage(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class TokenLogprob(BaseModel):
    logprob: float


class Logprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class Choice(BaseModel):
    message: ReplyMessage
    finish_reason: str
    logprobs: Logprobs | None = None
    token_ids: list[int] | None = None  # vLLM's `return_token_ids`


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Completion(BaseModel):
    """The fields of a `chat.completion` reply that a trajectory keeps; other fields are ignored."""

    model: str
    choices: list[Choice] = Field(min_length=1)
    usage: Usage | None = None
    prompt_token_ids: list[int] | None = None  # vLLM's `return_token_ids`


def completion_body(
    completion_id: str,
    model: str,
    choices: list[dict[str, Any]],
    prompt_ids: list[int],
    completion_tokens: int,
    return_token_ids: bool,
) -> dict[str, Any]:
    """The `chat.completion` envelope, with vLLM's top-level `prompt_token_ids` when they were asked for."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": completion_tokens,
            "total_tokens": len(prompt_ids) + completion_tokens,
        },
    }
    if return_token_ids:
        body["prompt_token_ids"] = prompt_ids
    return body
