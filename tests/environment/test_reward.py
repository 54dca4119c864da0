"""Every reward branch against hand-computed values (DESIGN §3)."""

from __future__ import annotations

import pytest

from agentrun.environment.episode import Episode, ToolErrorKind
from agentrun.environment.reward import Outcome, Reward, is_dont_know, score
from agentrun.mailbox.records import Scenario


def episode(scenario: Scenario, **facts: object) -> Episode:
    result = Episode(scenario=scenario, max_turns=10)
    for name, value in facts.items():
        setattr(result, name, value)
    return result


def test_correct_with_two_sources_in_three_turns(scenario: Scenario) -> None:
    ep = episode(scenario, turns=3, searched_ids={"m1"}, read_ids={"m1"}, answer="Tahoe", sources=("m1", "m2"))
    # 1 + 0.3 (sources correct) + 0.1/2 (two sources) + 0.1 * (1 - 3/10)
    assert score(ep, True) == Reward(
        total=pytest.approx(1.42),
        outcome=Outcome.CORRECT,
        found_right_email=True,
        read_right_email=True,
        no_invalid_read=True,
        sources_correct=True,
        partial=pytest.approx(0.4),
    )


def test_correct_counts_distinct_sources_and_zero_sources_earns_no_bonus(scenario: Scenario) -> None:
    repeated = episode(scenario, turns=10, answer="Tahoe", sources=("m1", "m1"))
    assert score(repeated, True).total == pytest.approx(1 + 0.3 + 0.1)
    unsourced = episode(scenario, turns=5, answer="Tahoe", sources=())
    assert score(unsourced, True).total == pytest.approx(1 + 0.05)
    assert not score(unsourced, True).sources_correct


def test_wrong_answer_keeps_partial_credit(scenario: Scenario) -> None:
    ep = episode(scenario, turns=4, searched_ids={"m1", "m3"}, read_invalid_id=True, answer="Aspen", sources=("m3",))
    reward = score(ep, False)
    assert (reward.outcome, reward.total, reward.partial) == (Outcome.WRONG, pytest.approx(-0.9), pytest.approx(0.1))
    assert (reward.found_right_email, reward.read_right_email, reward.no_invalid_read) == (True, False, False)


@pytest.mark.parametrize(
    ("kind", "base", "outcome"),
    [
        (ToolErrorKind.UNPARSEABLE, -2.0, Outcome.UNPARSEABLE),
        (ToolErrorKind.UNKNOWN_TOOL, -1.9, Outcome.UNKNOWN_TOOL),
        (ToolErrorKind.BAD_ARGUMENTS, -1.8, Outcome.BAD_ARGUMENTS),
    ],
)
def test_tool_errors_with_partial_credit(
    scenario: Scenario, kind: ToolErrorKind, base: float, outcome: Outcome
) -> None:
    ep = episode(scenario, turns=2, searched_ids={"m1"}, read_ids={"m1"}, error=kind)
    reward = score(ep, None)
    assert reward.outcome == outcome and reward.total == pytest.approx(base + 0.3)


def test_dont_know_and_out_of_turns_earn_only_partial_credit(scenario: Scenario) -> None:
    dont_know = episode(scenario, turns=6, searched_ids={"m1"}, answer="I don't know.", sources=())
    assert (score(dont_know, None).outcome, score(dont_know, None).total) == (Outcome.DONT_KNOW, pytest.approx(0.2))
    out_of_turns = episode(scenario, turns=10, read_invalid_id=True)
    assert (score(out_of_turns, None).outcome, score(out_of_turns, None).total) == (Outcome.OUT_OF_TURNS, 0.0)


def test_score_refuses_a_running_episode_or_an_unjudged_answer(scenario: Scenario) -> None:
    with pytest.raises(ValueError, match="still running"):
        score(episode(scenario, turns=3), None)
    with pytest.raises(ValueError, match="judge's verdict"):
        score(episode(scenario, turns=3, answer="Tahoe"), None)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("I don't know", True),
        ("  i DO NOT know. ", True),
        ("I don\u2019t know!", True),
        ("I dont know", True),
        ("Don't know", True),
        ("I don't know, maybe Tahoe", False),
        ("unknown", False),
        ("Tahoe", False),
        ("", False),
    ],
)
def test_is_dont_know_accepts_only_plain_refusals(answer: str, expected: bool) -> None:
    assert is_dont_know(answer) is expected
