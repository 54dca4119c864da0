"""The record of one sampled episode: what the learner trains on and what people inspect afterwards.

A `Trajectory` keeps the conversation in OpenAI format (what a chat template renders), and per turn the
token ids and log-probabilities the server generated, so the learner never re-tokenises text (DESIGN §4),
and the model name that served the turn, so a step can prove which adapter it sampled from. Failures are
recorded, not raised: a trajectory whose request or environment failed carries `exception` and no reward,
and the learner drops it (`failed`) rather than mistaking an infrastructure fault for a policy mistake.

Files are JSON Lines, one trajectory per line, gzip-compressed when the name ends in `.gz`
(`runs/<run>/trajectories/step-000042.jsonl.gz`); writing then reading gives back equal objects.

Any text a model emits is recorded as it is, whatever it holds: `to_json` and `from_json` are the one
place where model text meets JSON (the rollout client's requests and replies use them too). The hazard
is the lone UTF-16 surrogate: a model writing `"\\ud83d"` inside its tool-call arguments puts one into a
Python str (JSON allows the escape), which UTF-8 cannot encode, so pydantic's serialiser refuses it (or,
in a dict key, writes U+FFFD instead) and its parser refuses the escape. Such text is written as ASCII
JSON with the escape kept, and read back with the standard library's parser, which restores it; text
without it takes pydantic's path, ~8x faster on a long trajectory.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pydantic_core
from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """Base of the records: unknown fields are errors, and a logprob of -inf survives a JSON round trip."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class ToolCallRecord(Record):
    id: str
    name: str
    arguments: str  # the raw JSON text the model generated, parseable or not


class Usage(Record):
    prompt_tokens: int
    completion_tokens: int


class Turn(Record):
    """One chat-completions request and the assistant message it returned."""

    prompt_messages: int  # the request sent messages[:prompt_messages]; messages[prompt_messages] is the reply
    content: str | None
    tool_calls: list[ToolCallRecord] = []
    finish_reason: str
    model: str  # the response's `model`: the adapter (or base model) that actually served this turn
    token_ids: list[int] | None = None  # generated tokens, when the server returned them
    logprobs: list[float] | None = None  # one per generated token, when the server returned them
    prompt_token_ids: list[int] | None = None
    usage: Usage | None = None
    latency_seconds: float  # the successful request, from send to parsed response
    retries: int = 0  # failed attempts before the one that succeeded


class EpisodeRecord(Record):
    """The facts of `environment.episode.Episode` that the reward and the metrics read."""

    turns: int
    answer: str | None
    sources: list[str]
    error: str | None  # a `ToolErrorKind` value
    error_detail: str | None
    found_right_email: bool
    read_right_email: bool
    read_invalid_id: bool
    ran_out_of_turns: bool


class RewardRecord(Record):
    total: float
    outcome: str
    partial: float
    found_right_email: bool
    read_right_email: bool
    no_invalid_read: bool
    sources_correct: bool


class Timings(Record):
    wall_seconds: float  # from acquiring a concurrency slot to the reward
    queued_seconds: float = 0.0  # waiting for a concurrency slot
    env_seconds: float = 0.0  # executing tool calls
    judge_seconds: float = 0.0


class Trajectory(Record):
    scenario_id: int
    question: str
    model: str  # the model name that was requested
    policy_version: int | None = None  # the adapter version (its training step; 0: the base) that sampled it
    group_index: int = 0
    sample_index: int = 0
    seed: int | None = None
    messages: list[dict[str, Any]] = []
    turns: list[Turn] = []
    episode: EpisodeRecord | None = None  # None only when the environment could not be created
    answer_correct: bool | None = None  # None when there was no answer to judge
    reward: RewardRecord | None = None  # None exactly when the trajectory failed
    retries: int = 0  # requests sent again after a retryable failure, over the whole trajectory
    timings: Timings
    exception: str | None = None  # "ExceptionType: message" of what stopped this trajectory

    @property
    def failed(self) -> bool:
        """True when an exception stopped the trajectory; it has no reward and must not be trained on."""
        return self.exception is not None

    @property
    def served_by(self) -> set[str]:
        """Every model name that served a turn of this trajectory."""
        return {turn.model for turn in self.turns}


def to_json(value: Any) -> str:
    """JSON text of a record or of plain data, for any str inside (lone surrogates escaped); -inf and
    nan as the constants `-Infinity` and `NaN`, which `from_json` reads back.

    One str does not come back as it went: a high surrogate followed by a low one, as two code points,
    is written as the same escape pair as the one character they encode, and read back as that
    character. No JSON parser produces such a str, so no text that came from a model holds one."""
    try:
        text = pydantic_core.to_json(value).decode("utf-8")
    except pydantic_core.PydanticSerializationError:
        text = None
    # pydantic refuses a lone surrogate in a value, but in a dict key inside a record it writes U+FFFD
    # instead, without a word; so pydantic's fast text is used only when it holds no U+FFFD at all.
    if text is not None and "\ufffd" not in text:
        return text
    return json.dumps(value, default=_plain, ensure_ascii=True, separators=(",", ":"))


def without_lone_surrogates(value: Any) -> Any:
    """Plain data with every lone surrogate in its strings (keys included) replaced by U+FFFD: what a
    server's tokenizer can encode. vLLM refuses a request holding one (400), so a conversation in which
    the model wrote one is sent this way; the trajectory keeps the model's text as it was."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_lone_surrogates(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """What the standard library's encoder cannot write itself, as plain data (records in Python mode,
    so that no text passes through pydantic's lossy encoding of keys)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    return pydantic_core.to_jsonable_python(value)


def from_json(data: str | bytes) -> Any:
    """Plain data from JSON text, lone-surrogate escapes included (which pydantic's fast parser refuses)."""
    try:
        return pydantic_core.from_json(data)
    except ValueError:
        return json.loads(data)  # a genuinely malformed text raises here, as json.JSONDecodeError


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def write_jsonl(path: Path | str, trajectories: Iterable[Trajectory]) -> None:
    """Write one trajectory per line; the file appears complete or not at all (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        with _open(staging, "w") as handle:
            for trajectory in trajectories:
                handle.write(to_json(trajectory))
                handle.write("\n")
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def read_jsonl(path: Path | str) -> list[Trajectory]:
    with _open(Path(path), "r") as handle:
        return [Trajectory.model_validate(from_json(line)) for line in handle if line.strip()]
