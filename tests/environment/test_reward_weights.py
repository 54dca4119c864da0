"""Reward weights from the spec: every branch scored with non-default weights against hand values, and the
break-even precision they imply against hand-solved values."""

from __future__ import annotations

import pytest

from agentrun.environment.episode import ToolErrorKind
from agentrun.environment.reward import ARTE, Outcome, break_even_precision, score
from agentrun.mailbox.records import Scenario
from agentrun.spec.models import RewardSpec
from tests.environment.test_reward import episode

WEIGHTS = RewardSpec(
    correct_answer=2.0, correct_sources_bonus=0.5, few_sources_bonus=0.2, early_finish_bonus=0.4, wrong_answer=-0.5,
    no_answer=-0.25, bad_arguments=-3.0, unknown_tool=-4.0, unparseable_tool_call=-5.0, partial_credit=0.05,
)


def test_a_correct_answer_earns_the_weights_base_and_bonuses(scenario: Scenario) -> None:
    ep = episode(scenario, turns=4, searched_ids={"m1"}, read_ids={"m1"}, answer="Tahoe", sources=("m1", "m2"))
    # 2 + 0.5 (sources correct) + 0.2/2 (two sources) + 0.4 * (1 - 4/10); partial credit is not added
    assert score(ep, True, WEIGHTS).total == pytest.approx(2.84)


@pytest.mark.parametrize(
    ("facts", "verdict", "outcome", "total"),
    [
        # -0.5 + 0.05 * (found + no invalid read)
        ({"searched_ids": {"m1"}, "answer": "Aspen", "sources": ("m3",)}, False, Outcome.WRONG, -0.4),
        # -0.25 + 0.05 * (found + read + no invalid read)
        ({"searched_ids": {"m1"}, "read_ids": {"m1"}, "answer": "I don't know"}, None, Outcome.DONT_KNOW, -0.1),
        ({"read_invalid_id": True}, None, Outcome.OUT_OF_TURNS, -0.25),
        ({"error": ToolErrorKind.BAD_ARGUMENTS}, None, Outcome.BAD_ARGUMENTS, -3.0 + 0.05),
        ({"error": ToolErrorKind.UNKNOWN_TOOL}, None, Outcome.UNKNOWN_TOOL, -4.0 + 0.05),
        ({"error": ToolErrorKind.UNPARSEABLE}, None, Outcome.UNPARSEABLE, -5.0 + 0.05),
    ],
)
def test_every_other_outcome_earns_its_weight_plus_partial_credit(
    scenario: Scenario, facts: dict[str, object], verdict: bool | None, outcome: Outcome, total: float
) -> None:
    reward = score(episode(scenario, turns=10, **facts), verdict, WEIGHTS)
    assert (reward.outcome, reward.total) == (outcome, pytest.approx(total))


def test_the_default_weights_are_arte_s() -> None:
    assert ARTE == RewardSpec()
    assert (ARTE.correct_answer, ARTE.correct_sources_bonus, ARTE.few_sources_bonus, ARTE.early_finish_bonus) == (
        1.0, 0.3, 0.1, 0.1)
    assert (ARTE.wrong_answer, ARTE.no_answer, ARTE.partial_credit) == (-1.0, 0.0, 0.1)
    assert (ARTE.bad_arguments, ARTE.unknown_tool, ARTE.unparseable_tool_call) == (-1.8, -1.9, -2.0)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (ARTE, 1 / 2.4),  # 1.4p - (1 - p) = 0 (DESIGN §3: ~0.42)
        (WEIGHTS, 0.25 / 3.2),  # 2.7p - 0.5(1 - p) = -0.25
        (RewardSpec(wrong_answer=-0.25), 0.25 / 1.65),  # 1.4p - 0.25(1 - p) = 0
        (RewardSpec(wrong_answer=0.0), 0.0),  # a wrong answer costs no more than abstaining: always answer
        (RewardSpec(wrong_answer=0.5), 0.0),
    ],
)
def test_break_even_precision_against_hand_values(weights: RewardSpec, expected: float) -> None:
    assert break_even_precision(weights) == pytest.approx(expected)


def test_at_the_break_even_answering_and_abstaining_earn_the_same(scenario: Scenario) -> None:
    """The hand value checked through `score`: one source cited, the last turn, no partial credit."""
    p = break_even_precision(WEIGHTS)
    right = score(episode(scenario, turns=10, answer="Tahoe", sources=("m1",), read_invalid_id=True), True, WEIGHTS)
    wrong = score(episode(scenario, turns=10, answer="Aspen", read_invalid_id=True), False, WEIGHTS)
    abstain = score(episode(scenario, turns=10, answer="I don't know", read_invalid_id=True), None, WEIGHTS)
    assert p * right.total + (1 - p) * wrong.total == pytest.approx(abstain.total)


def test_a_correct_answer_must_pay_more_than_a_wrong_one_or_none() -> None:
    for bad in ({"wrong_answer": 1.0}, {"no_answer": 1.5}, {"correct_answer": -1.0}):
        with pytest.raises(ValueError, match="correctAnswer must exceed"):
            RewardSpec(**bad)  # type: ignore[arg-type]
