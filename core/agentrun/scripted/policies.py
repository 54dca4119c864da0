"""Scripted policies: the next assistant action as a pure function of what is known and said so far.

A policy sees a `Plan` (the steps a competent agent takes for one scenario, worked out beforehand with
access to the mailbox, see `knowledge`), the conversation in OpenAI format, and a seeded `Random`. It
finds its place in the plan by matching the tool calls already made against the plan's steps in order,
so a detour (reading an id that does not exist) does not derail it, and a rerun with the same seed
plays the same episode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from random import Random
from typing import Any

from agentrun.mailbox.records import Scenario

ANSWER_TOOL = "return_final_answer"
DONT_KNOW = "I don't know"


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """One assistant turn: text, tool calls, or both (a turn without calls is what a parse failure gives)."""

    content: str | None = None
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What the oracle does for one scenario: searches, reads, then the final answer (always last)."""

    scenario: Scenario
    steps: tuple[Call, ...]
    decoy_answer: str  # a plausible answer the judge rejects, for the noisy policy's wrong answers

    def __post_init__(self) -> None:
        if not self.steps or self.steps[-1].name != ANSWER_TOOL:
            raise ValueError("a plan ends with the final answer")


class Mistake(StrEnum):
    """Errors the noisy policy makes; the first four can happen on any turn, the rest when answering."""

    UNPARSEABLE = "unparseable"  # text instead of a tool call
    UNKNOWN_TOOL = "unknown_tool"
    BAD_ARGUMENTS = "bad_arguments"
    INVALID_READ = "invalid_read"  # reads a made-up message id, then carries on
    WRONG_ANSWER = "wrong_answer"
    DONT_KNOW = "dont_know"
    WRONG_SOURCES = "wrong_sources"  # the right answer, citing a made-up id instead of the sources


ANSWER_MISTAKES = frozenset({Mistake.WRONG_ANSWER, Mistake.DONT_KNOW, Mistake.WRONG_SOURCES})


def spread(error_rate: float) -> dict[Mistake, float]:
    """Per-turn probabilities that split `error_rate` evenly over every mistake possible on a turn."""
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error rate must be within [0, 1], got {error_rate}")
    anytime = [mistake for mistake in Mistake if mistake not in ANSWER_MISTAKES]
    return {m: error_rate / (len(anytime) if m in anytime else len(ANSWER_MISTAKES)) for m in Mistake}


def oracle(plan: Plan, messages: Sequence[Mapping[str, Any]], rng: Random) -> Action:
    """The plan's next step."""
    return Action(calls=(next_step(plan, messages),))


def noisy(
    plan: Plan, messages: Sequence[Mapping[str, Any]], rng: Random, mistakes: Mapping[Mistake, float]
) -> Action:
    """The oracle, except that with probability `mistakes[m]` this turn makes mistake `m` instead.

    Answer mistakes are drawn only on the turn the oracle would answer; the probabilities of the
    mistakes possible on a turn must sum to at most 1.
    """
    step = next_step(plan, messages)
    answering = step.name == ANSWER_TOOL
    draw = rng.random()
    for mistake in Mistake:
        if answering or mistake not in ANSWER_MISTAKES:
            draw -= mistakes.get(mistake, 0.0)
            if draw < 0.0:
                return _make(mistake, plan, step, rng)
    return Action(calls=(step,))


def next_step(plan: Plan, messages: Sequence[Mapping[str, Any]]) -> Call:
    """The first plan step not yet taken: calls already made are matched against the steps in order."""
    taken = 0
    for call in _calls_made(messages):
        if taken < len(plan.steps) - 1 and call == plan.steps[taken]:
            taken += 1
    return plan.steps[taken]


def _calls_made(messages: Sequence[Mapping[str, Any]]) -> list[Call]:
    calls = []
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for tool_call in message.get("tool_calls") or ():
            function = tool_call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                continue
            calls.append(Call(function.get("name", ""), arguments))
    return calls


def _made_up_id(rng: Random) -> str:
    return f"<{rng.getrandbits(48):012x}.JavaMail.scripted@invalid>"


def _make(mistake: Mistake, plan: Plan, step: Call, rng: Random) -> Action:
    scenario = plan.scenario
    match mistake:
        case Mistake.UNPARSEABLE:
            return Action(content=f"I should search the inbox of {scenario.inbox_address} for this.")
        case Mistake.UNKNOWN_TOOL:
            return Action(calls=(Call("search_inbox", {"query": scenario.question}),))
        case Mistake.BAD_ARGUMENTS:
            return Action(calls=(Call("search_emails", {"query": scenario.question}),))
        case Mistake.INVALID_READ:
            return Action(calls=(Call("read_email", {"message_id": _made_up_id(rng)}),))
        case Mistake.WRONG_ANSWER:
            return Action(calls=(Call(ANSWER_TOOL, {**step.arguments, "answer": plan.decoy_answer}),))
        case Mistake.DONT_KNOW:
            return Action(calls=(Call(ANSWER_TOOL, {"answer": DONT_KNOW, "sources": []}),))
        case Mistake.WRONG_SOURCES:
            return Action(calls=(Call(ANSWER_TOOL, {**step.arguments, "sources": [_made_up_id(rng)]}),))
