"""Demonstrations for supervised fine-tuning: conversations in OpenAI format with the tools they offered.

Two sources: the scripted oracle played over a dataset's scenarios (the plan of `scripted.knowledge`,
each call executed by the real `EmailEnvironment`, so tool results are byte for byte what the model will
see in rollouts), or a JSONL file a user supplies, one conversation per line, either a rollout
`Trajectory` or a plain `{"messages": [...], "tools": [...]}` object.

In the core, not the trainer: the models read them too (the tokenizer's corpus), and they need no torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

import pydantic

from agentrun.environment.email_env import EmailEnvironment
from agentrun.environment.episode import ToolCall
from agentrun.environment.tools import TOOL_SCHEMAS
from agentrun.mailbox.records import Scenario, Split
from agentrun.rollout.trajectory import Trajectory
from agentrun.scripted import knowledge, policies
from agentrun.spec.models import EnvironmentSpec


class DemonstrationError(Exception):
    """Demonstrations cannot be read: no file, a malformed line (named by number), or none at all."""


@dataclass(frozen=True)
class Demonstration:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]


def oracle(
    dataset_dir: Path, split: Split = "train", *, limit: int | None = None, seed: int = 0,
    settings: EnvironmentSpec = EnvironmentSpec(),
) -> list[Demonstration]:
    """The oracle's episode for each scenario of `split` (ordered by id, the first `limit`)."""
    def choose(every: list[Scenario]) -> list[Scenario]:
        return sorted((s for s in every if s.split == split), key=lambda s: s.id)[:limit]

    return _episodes(dataset_dir, choose, seed, settings)


def oracle_for(
    dataset_dir: Path, scenarios: Sequence[Scenario], *, seed: int = 0, settings: EnvironmentSpec = EnvironmentSpec(),
) -> list[Demonstration]:
    """The oracle's episode for each of `scenarios`: a run's bootstrap plays only the questions the run
    learns from (`benchmark.training_scenarios`), never its validation or test questions."""
    return _episodes(dataset_dir, lambda _: scenarios, seed, settings)


def _episodes(dataset_dir: Path, choose: Callable[[list[Scenario]], Sequence[Scenario]], seed: int,
              settings: EnvironmentSpec) -> list[Demonstration]:
    """The oracle's episodes of the scenarios `choose` picks from the dataset's (opening the dataset
    first, so a missing one is the mailbox's error whatever is chosen)."""
    known = knowledge.Knowledge(dataset_dir)
    try:
        return [_play(known, scenario, Random(seed + scenario.id), settings) for scenario in choose(known.scenarios)]
    finally:
        known.close()


def _play(known: knowledge.Knowledge, scenario: Scenario, rng: Random, settings: EnvironmentSpec) -> Demonstration:
    """Play the oracle's plan in the real environment until the episode ends."""
    env = EmailEnvironment(known.mailbox, scenario, settings)
    messages = env.initial_messages()
    plan = known.plan_for(messages)
    while not env.episode.done:
        action = policies.oracle(plan, messages, rng)
        calls = [
            ToolCall(f"call_{env.episode.turns}_{k}", call.name, json.dumps(call.arguments, ensure_ascii=False))
            for k, call in enumerate(action.calls)
        ]
        messages.append({
            "role": "assistant",
            "content": action.content,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ],
        })
        messages += env.respond(action.content, calls)
    return Demonstration(messages, list(env.tools))


def read_jsonl(path: Path) -> list[Demonstration]:
    """Every conversation of a JSONL file; a line that is neither format raises naming its number."""
    if not path.is_file():
        raise DemonstrationError(f"no demonstrations file at {path}")
    demonstrations = list(_lines(path))
    if not demonstrations:
        raise DemonstrationError(f"{path} holds no demonstrations")
    return demonstrations


def _lines(path: Path) -> Iterator[Demonstration]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield _parse(json.loads(line))
                except (ValueError, pydantic.ValidationError) as error:
                    reason = str(error).splitlines()[0]
                    raise DemonstrationError(f"{path}:{number}: not a trajectory or a messages object: {reason}") from None


def _parse(record: Any) -> Demonstration:
    """A trajectory (it has `scenario_id`; it offered the environment's default tools) or a plain
    `{"messages", "tools"}` object (tools default to the email task's)."""
    if not isinstance(record, dict):
        raise ValueError("the line is not a JSON object")
    if "scenario_id" in record:
        record = {"messages": Trajectory.model_validate(record).messages}
    messages, tools = record.get("messages"), record.get("tools", TOOL_SCHEMAS)
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ValueError("`messages` must be a list of objects with a `role`")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("the conversation has no assistant message to learn from")
    return Demonstration(messages, list(tools))
