"""Which questions each training step draws: the step number is the whole data cursor."""

from __future__ import annotations

from datetime import datetime

from agentrun.mailbox.records import Scenario
from agentrun.rollout.driver import step_scenarios

POOL = [
    Scenario(id=i, question=f"q{i}", answer="a", message_ids=("<m>",), inbox_address="x@enron.com",
             query_date=datetime(2001, 5, 1), how_realistic=1.0, split="train")
    for i in range(10)
]


def ids(scenarios: list[Scenario]) -> list[int]:
    return [s.id for s in scenarios]


def test_an_epoch_visits_every_scenario_once_then_reshuffles() -> None:
    first_epoch = ids(step_scenarios(POOL, 5, 1, seed=0)) + ids(step_scenarios(POOL, 5, 2, seed=0))
    assert sorted(first_epoch) == list(range(10))
    second_epoch = ids(step_scenarios(POOL, 5, 3, seed=0)) + ids(step_scenarios(POOL, 5, 4, seed=0))
    assert sorted(second_epoch) == list(range(10)) and second_epoch != first_epoch


def test_a_step_spanning_two_epochs_takes_the_end_of_one_and_the_start_of_the_next() -> None:
    step = ids(step_scenarios(POOL, 4, 3, seed=0))  # positions 8..11 of the stream
    assert step == ids(step_scenarios(POOL, 10, 1, seed=0))[8:] + ids(step_scenarios(POOL, 10, 2, seed=0))[:2]


def test_same_step_and_seed_same_scenarios() -> None:
    assert ids(step_scenarios(POOL, 3, 7, seed=4)) == ids(step_scenarios(POOL, 3, 7, seed=4))
    assert ids(step_scenarios(POOL, 10, 1, seed=4)) != ids(step_scenarios(POOL, 10, 1, seed=5))
