"""The agent's three tools: their OpenAI schemas and the validation that classifies a bad call.

Each tool's arguments are one pydantic model, and its JSON schema is generated from that model, so what
the model is shown and what is accepted cannot drift apart. Validation is strict (no "5" for 5, no
unknown fields): a call that does not fit the advertised schema is a bad-arguments error, which the
reward penalises. The inbox and the `sent_before = query_date` bound are not arguments at all: the
environment imposes them.

A lone UTF-16 surrogate (JSON's "\\ud83d" escape without its pair) in a string argument is not by
itself a reason to refuse a call: it is kept as written in an answer or source (the trajectory record
escapes it) and replaced where SQLite binds it (`queries.bindable`). An error message echoes the
model's text only repr()-escaped and cut short, so it stays UTF-8 encodable and small.
"""

from __future__ import annotations

import functools

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from agentrun.environment.episode import ToolCall, ToolErrorKind
from agentrun.mailbox import queries

MAX_SEARCH_RESULTS = 10
# Bounds a single search's cost: FTS5 reads one doclist per phrase token.
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 200
# What an error may echo of a bad call, so that the message the model reads next stays small however
# large the call: the first few problems, each field name and message cut short.
MAX_PROBLEMS = 5
MAX_FIELD_CHARS = 40
MAX_PROBLEM_CHARS = 200


class ToolError(Exception):
    """A tool call that cannot be executed; `kind` decides the penalty, `detail` is shown to the model."""

    def __init__(self, kind: ToolErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SearchEmails(_Arguments):
    """Search the user's inbox. Returns up to max_results emails containing every keyword (in the
    subject or body), best match first, each as {message_id, snippet}."""

    keywords: list[Annotated[str, StringConstraints(max_length=MAX_KEYWORD_CHARS)]] = Field(
        min_length=1,
        max_length=MAX_KEYWORDS,
        description="Words or phrases that must all appear in the email; each one is matched as a phrase.",
    )
    from_addr: str | None = Field(None, description="Only emails sent from this email address.")
    to_addr: str | None = Field(None, description="Only emails sent to this email address (to, cc or bcc).")
    sent_after: str | None = Field(None, description="Only emails sent on or after this date, YYYY-MM-DD.")
    sent_before: str | None = Field(None, description="Only emails sent before this date, YYYY-MM-DD.")
    max_results: int | None = Field(None, ge=1, le=MAX_SEARCH_RESULTS, description="Most results to return.")

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_text(cls, value: Any) -> Any:
        # pydantic refuses a lone surrogate in a length-constrained str ("unable to parse raw data as a
        # unicode string"); like every other argument's text, such a keyword is accepted and made safe.
        if isinstance(value, list):
            return [queries.bindable(item) if isinstance(item, str) else item for item in value]
        return value

    @field_validator("sent_after", "sent_before")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return None if value is None else queries.parse_date(value)

    @field_validator("max_results")
    @classmethod
    def _within_setting(cls, value: int | None, info: ValidationInfo) -> int | None:
        limit = (info.context or {}).get("max_search_results", MAX_SEARCH_RESULTS)
        if value is not None and value > limit:
            raise ValueError(f"max_results must be at most {limit}")
        return value


class ReadEmail(_Arguments):
    """Read one email of the user's inbox by its message_id: subject, sender, recipients, date and body."""

    message_id: str = Field(description="The message_id of an email, as returned by search_emails.")


class ReturnFinalAnswer(_Arguments):
    """Give the final answer to the user's question and end the task."""

    answer: str = Field(description="The answer, or \"I don't know\" if it could not be found.")
    sources: list[str] = Field(description="The message_ids of the emails the answer is based on.")


Arguments = SearchEmails | ReadEmail | ReturnFinalAnswer
TOOLS: dict[str, type[Arguments]] = {
    "search_emails": SearchEmails,
    "read_email": ReadEmail,
    "return_final_answer": ReturnFinalAnswer,
}


class _ToolJsonSchema(GenerateJsonSchema):
    """Plain schemas for small models: an optional argument is `{"type": "string"}`, not anyOf-null."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default") is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _schema(name: str, model: type[Arguments], max_search_results: int) -> dict[str, Any]:
    parameters = model.model_json_schema(schema_generator=_ToolJsonSchema)
    description = " ".join(parameters.pop("description").split())
    parameters.pop("title")
    if "max_results" in parameters["properties"]:
        parameters["properties"]["max_results"].update(maximum=max_search_results, default=max_search_results)
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


@functools.cache
def tool_schemas(max_search_results: int = MAX_SEARCH_RESULTS) -> list[dict[str, Any]]:
    """The OpenAI `tools` list, with search results bounded by the environment's setting.

    Cached: generating the JSON schemas costs ~1.6 ms, paid once per setting instead of per episode.
    The list is shared between episodes, so callers must not mutate it."""
    return [_schema(name, model, max_search_results) for name, model in TOOLS.items()]


TOOL_SCHEMAS = tool_schemas()


def parse_call(call: ToolCall, max_search_results: int = MAX_SEARCH_RESULTS) -> Arguments:
    """Validate one tool call, or raise ToolError saying why it cannot run.

    Order of checks: the arguments must be a JSON object (else UNPARSEABLE), the name must be a tool
    (else UNKNOWN_TOOL), and the object must fit that tool's schema (else BAD_ARGUMENTS).
    """
    try:
        data = json.loads(call.arguments)
    except (TypeError, ValueError, RecursionError):  # TypeError: no text at all; RecursionError: deep nesting
        raise ToolError(ToolErrorKind.UNPARSEABLE, "tool call arguments are not valid JSON") from None
    if not isinstance(data, dict):
        raise ToolError(ToolErrorKind.UNPARSEABLE, "tool call arguments must be a JSON object")
    model = TOOLS.get(call.name)
    if model is None:
        known = ", ".join(TOOLS)
        raise ToolError(ToolErrorKind.UNKNOWN_TOOL, f"unknown tool {call.name[:80]!r}; the tools are {known}")
    try:
        return model.model_validate(data, context={"max_search_results": max_search_results})
    except ValidationError as error:
        raise ToolError(ToolErrorKind.BAD_ARGUMENTS, f"bad arguments for {call.name}: {_summary(error)}") from None


def _summary(error: ValidationError) -> str:
    """Which fields failed and why, without echoing the (possibly huge) input values."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    shown = []
    for problem in problems[:MAX_PROBLEMS]:
        where = ".".join(_field(part) for part in problem["loc"]) or "arguments"
        shown.append(f"{where}: {problem['msg'][:MAX_PROBLEM_CHARS]}")
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"and {len(problems) - MAX_PROBLEMS} more problems")
    return "; ".join(shown)


def _field(part: str | int) -> str:
    """One step of an error's location: a list index, a field name, or a key the model made up (the
    location of an unknown argument), which is the model's own text and may be anything."""
    text = str(part)
    if isinstance(part, int) or (text.isidentifier() and len(text) <= MAX_FIELD_CHARS):
        return text
    return repr(text[:MAX_FIELD_CHARS]) + ("..." if len(text) > MAX_FIELD_CHARS else "")
