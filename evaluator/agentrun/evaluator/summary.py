"""Benchmark metrics of the email task, computed from trajectories: pure functions, no I/O.

Accuracy counts every question asked (a failed request is a wrong answer from the user's point of
view); reward and turns average over the trajectories that ran, and failures are reported apart, so an
infrastructure fault is never mistaken for a policy mistake or hidden in a mean.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from agentrun import stats
from agentrun.rollout.trajectory import Trajectory

EXCEPTION = "exception"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class EvalSummary:
    questions: int
    answer_accuracy: float
    sources_accuracy: float
    mean_reward: float
    mean_turns: float
    latency_p50_seconds: float
    latency_p95_seconds: float
    outcomes: dict[str, int] = field(default_factory=dict)  # correct, wrong, dont_know, ..., exception

    @property
    def failed(self) -> int:
        return self.outcomes.get(EXCEPTION, 0)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(trajectories: Sequence[Trajectory]) -> EvalSummary:
    ran = [t for t in trajectories if not t.failed and t.reward is not None]
    outcomes = Counter(t.reward.outcome if t.reward is not None else EXCEPTION for t in trajectories)
    asked = max(len(trajectories), 1)
    latencies = [t.timings.wall_seconds for t in ran]
    return EvalSummary(
        questions=len(trajectories),
        answer_accuracy=sum(t.answer_correct is True for t in ran) / asked,
        sources_accuracy=sum(t.reward.sources_correct for t in ran if t.reward) / asked,
        mean_reward=_mean([t.reward.total for t in ran if t.reward]),
        mean_turns=_mean([t.episode.turns for t in ran if t.episode]),
        latency_p50_seconds=stats.percentile(latencies, 50),
        latency_p95_seconds=stats.percentile(latencies, 95),
        outcomes=dict(sorted(outcomes.items())),
    )


def per_question(trajectories: Sequence[Trajectory]) -> list[dict[str, object]]:
    """One row per question, in order, so two evaluations can be compared question by question."""
    return [
        {
            "scenario_id": t.scenario_id,
            "answer_correct": t.answer_correct,
            "sources_correct": t.reward.sources_correct if t.reward else None,
            "reward": t.reward.total if t.reward else None,
            "outcome": t.reward.outcome if t.reward else EXCEPTION,
            "turns": t.episode.turns if t.episode else None,
            "latency_seconds": t.timings.wall_seconds,
            "answer": t.episode.answer if t.episode else None,
            "exception": t.exception,
        }
        for t in trajectories
    ]


def render_table(summary: EvalSummary, title: str) -> str:
    rows = [
        ("questions", f"{summary.questions}"),
        ("answer accuracy", f"{summary.answer_accuracy:.1%}"),
        ("sources accuracy", f"{summary.sources_accuracy:.1%}"),
        ("mean reward", f"{summary.mean_reward:.3f}"),
        ("mean turns", f"{summary.mean_turns:.2f}"),
        ("latency p50", f"{summary.latency_p50_seconds:.3f} s"),
        ("latency p95", f"{summary.latency_p95_seconds:.3f} s"),
    ]
    rows += [(f"outcome: {name}", f"{count}") for name, count in summary.outcomes.items()]
    width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    rule = f"+-{'-' * width}-+-{'-' * value_width}-+"
    lines = [title, rule] + [f"| {name:<{width}} | {value:>{value_width}} |" for name, value in rows] + [rule]
    return "\n".join(lines)
