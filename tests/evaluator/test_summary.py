"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import pytest

from agentrun.evaluator import summary
from agentrun.rollout.trajectory import EpisodeRecord, RewardRecord, Timings, Trajectory


def trajectory(scenario_id: int, outcome: str | None, reward: float = 0.0, correct: bool | None = None,
               sources: bool = False, turns: int = 3, wall: float = 1.0) -> Trajectory:
    episode = EpisodeRecord(turns=turns, answer="x" if correct is not None else None, sources=[], error=None,
                            error_detail=None, found_right_email=False, read_right_email=False,
                            read_invalid_id=False, ran_out_of_turns=False)
    record = None if outcome is None else RewardRecord(
        total=reward, outcome=outcome, partial=0.0, found_right_email=False, read_right_email=False,
        no_invalid_read=True, sources_correct=sources)
    return Trajectory(scenario_id=scenario_id, question="q", model="m", episode=episode, answer_correct=correct,
                      reward=record, timings=Timings(wall_seconds=wall),
                      exception=None if outcome else "ConnectError: refused")


def test_summary_counts_failures_as_wrong_but_keeps_them_out_of_means() -> None:
    rows = [
        trajectory(1, "correct", reward=1.4, correct=True, sources=True, turns=3, wall=1.0),
        trajectory(2, "correct", reward=1.1, correct=True, sources=False, turns=5, wall=2.0),
        trajectory(3, "wrong", reward=-0.8, correct=False, turns=4, wall=3.0),
        trajectory(4, None, wall=99.0),
    ]
    result = summary.summarize(rows)
    assert result.questions == 4
    assert result.answer_accuracy == 0.5
    assert result.sources_accuracy == 0.25
    assert result.mean_reward == pytest.approx((1.4 + 1.1 - 0.8) / 3)
    assert result.mean_turns == 4.0
    assert result.latency_p50_seconds == 2.0  # the failed question's 99 s is not a model latency
    assert result.outcomes == {"correct": 2, "exception": 1, "wrong": 1}
    assert result.failed == 1


def test_per_question_rows_keep_order_for_pairing() -> None:
    rows = summary.per_question([trajectory(9, "wrong", correct=False), trajectory(2, None)])
    assert [r["scenario_id"] for r in rows] == [9, 2]
    assert rows[1]["outcome"] == "exception" and rows[1]["exception"] == "ConnectError: refused"


def test_table_lists_every_metric() -> None:
    table = summary.render_table(summary.summarize([trajectory(1, "correct", 1.2, True, True)]), "title")
    for label in ("answer accuracy", "sources accuracy", "mean reward", "mean turns", "latency p95",
                  "outcome: correct"):
        assert label in table
