"""Scripted policies as pure functions, and the plans the oracle follows on the synthetic dataset."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest

from agentrun.environment.judge import DeterministicJudge
from agentrun.mailbox.records import Scenario
from agentrun.scripted import policies
from agentrun.scripted.knowledge import Knowledge, UnknownScenario
from agentrun.scripted.policies import ANSWER_TOOL, Call, Mistake, Plan

SCENARIO = Scenario(
    id=1,
    question="When is the Falcon meeting?",
    answer="4:30 PM",
    message_ids=("<m1>",),
    inbox_address="alice@enron.com",
    query_date=datetime(2001, 5, 1),
    split="train",
)
SEARCH = Call("search_emails", {"keywords": ["falcon", "meeting"]})
READ = Call("read_email", {"message_id": "<m1>"})
ANSWER = Call(ANSWER_TOOL, {"answer": "4:30 PM", "sources": ["<m1>"]})
PLAN = Plan(SCENARIO, (SEARCH, READ, ANSWER), decoy_answer="Tuesday")
START = [{"role": "system", "content": "..."}, {"role": "user", "content": SCENARIO.question}]


def after(*calls: Call) -> list[dict[str, Any]]:
    """The conversation after the assistant made `calls`, one per turn."""
    messages = list(START)
    for index, call in enumerate(calls):
        function = {"name": call.name, "arguments": json.dumps(call.arguments)}
        messages.append({"role": "assistant", "content": None, "tool_calls": [{"id": f"c{index}", "type": "function", "function": function}]})
        messages.append({"role": "tool", "tool_call_id": f"c{index}", "content": "[]"})
    return messages


def test_the_oracle_follows_its_plan_through_detours() -> None:
    detour = Call("read_email", {"message_id": "<made-up>"})
    assert policies.next_step(PLAN, START) == SEARCH
    assert policies.next_step(PLAN, after(SEARCH)) == READ
    assert policies.next_step(PLAN, after(SEARCH, detour)) == READ
    assert policies.next_step(PLAN, after(SEARCH, detour, READ)) == ANSWER
    assert policies.oracle(PLAN, after(SEARCH, READ, ANSWER), Random(0)).calls == (ANSWER,)


def test_noisy_without_mistakes_is_the_oracle() -> None:
    assert policies.noisy(PLAN, START, Random(0), {}) == policies.oracle(PLAN, START, Random(0))


def test_answer_mistakes_wait_for_the_answer() -> None:
    mistakes = {Mistake.WRONG_ANSWER: 1.0}
    assert policies.noisy(PLAN, START, Random(0), mistakes).calls == (SEARCH,)
    (wrong,) = policies.noisy(PLAN, after(SEARCH, READ), Random(0), mistakes).calls
    assert wrong == Call(ANSWER_TOOL, {"answer": "Tuesday", "sources": ["<m1>"]})


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (Mistake.UNPARSEABLE, lambda action: not action.calls and action.content),
        (Mistake.UNKNOWN_TOOL, lambda action: action.calls[0].name not in ("search_emails", "read_email", ANSWER_TOOL)),
        (Mistake.BAD_ARGUMENTS, lambda action: "keywords" not in action.calls[0].arguments),
        (Mistake.INVALID_READ, lambda action: action.calls[0].name == "read_email" and action.calls[0] != READ),
    ],
)
def test_anytime_mistakes(mistake: Mistake, expected: Any) -> None:
    assert expected(policies.noisy(PLAN, START, Random(0), {mistake: 1.0}))


def test_noisy_draws_depend_only_on_the_rng() -> None:
    mistakes = policies.spread(0.5)
    actions = [policies.noisy(PLAN, after(SEARCH, READ), Random(seed), mistakes) for seed in range(40)]
    assert actions == [policies.noisy(PLAN, after(SEARCH, READ), Random(seed), mistakes) for seed in range(40)]
    assert len({repr(action) for action in actions}) > 2


def test_spread() -> None:
    rates = policies.spread(0.4)
    assert rates[Mistake.UNKNOWN_TOOL] == pytest.approx(0.1)
    assert rates[Mistake.DONT_KNOW] == pytest.approx(0.4 / 3)
    with pytest.raises(ValueError):
        policies.spread(1.5)


def test_a_plan_ends_with_the_answer() -> None:
    with pytest.raises(ValueError):
        Plan(SCENARIO, (SEARCH, READ), decoy_answer="Tuesday")


def test_oracle_plans_find_and_cite_every_source(dataset: Path) -> None:
    knowledge = Knowledge(dataset)
    try:
        for scenario in knowledge.scenarios[:40]:
            plan = knowledge.plan_for(
                [{"role": "system", "content": scenario.inbox_address}, {"role": "user", "content": scenario.question}]
            )
            assert plan.scenario == scenario
            searches = [step.arguments["keywords"] for step in plan.steps if step.name == "search_emails"]
            before = scenario.query_date.isoformat()
            found = {
                hit.message_id
                for keywords in searches
                for hit in knowledge.mailbox.search(scenario.inbox_address, keywords, sent_before=before)
            }
            assert set(scenario.message_ids) <= found
            assert plan.steps[-1].arguments == {"answer": scenario.answer, "sources": list(scenario.message_ids)}
            assert not DeterministicJudge.matches(scenario.answer, plan.decoy_answer)
        with pytest.raises(UnknownScenario):
            knowledge.plan_for([{"role": "user", "content": "Not a question of this dataset?"}])
    finally:
        knowledge.close()


def test_plans_can_be_padded_to_a_length(dataset: Path) -> None:
    knowledge = Knowledge(dataset, min_turns=5)
    try:
        for scenario in knowledge.scenarios[:20]:
            plan = knowledge.plan_for([{"role": "user", "content": scenario.question}])
            assert len(plan.steps) >= 5
            sources = len(scenario.message_ids)
            assert [step.name for step in plan.steps[-1 - sources :]] == ["read_email"] * sources + [ANSWER_TOOL]
    finally:
        knowledge.close()
