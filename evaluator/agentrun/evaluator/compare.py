"""Compare the evaluations of a run's checkpoints: a table by step and a PNG of reward and accuracy.

Reads `runs/<run>/evals/step-NNNNNN-<split>.json` (DESIGN §2), so it works on a finished run, a run in
progress, or one copied off a cluster's volume.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVAL_FILE = re.compile(r"^step-(\d{6})-(\w+)\.json$")


@dataclass(frozen=True)
class Point:
    step: int
    split: str
    model: str
    answer_accuracy: float
    mean_reward: float
    questions: int


def load_points(run_dir: Path) -> list[Point]:
    """Every evaluation of the run, ordered by split then step."""
    points = []
    for path in sorted((run_dir / "evals").glob("step-*.json")):
        match = EVAL_FILE.match(path.name)
        if not match:
            continue
        result = json.loads(path.read_text())
        s = result["summary"]
        points.append(Point(int(match.group(1)), match.group(2), result["model"], s["answer_accuracy"],
                            s["mean_reward"], s["questions"]))
    return sorted(points, key=lambda p: (p.split, p.step))


@dataclass(frozen=True)
class Paired:
    """after - before over the same questions: the mean difference and its standard error."""

    mean: float
    standard_error: float
    questions: int

    @property
    def z(self) -> float:
        """The difference in standard errors (infinite when every question moved alike)."""
        if self.standard_error:
            return self.mean / self.standard_error
        return math.copysign(math.inf, self.mean) if self.mean else 0.0


def paired(before: list[float], after: list[float]) -> Paired:
    """Per-question differences of two evaluations of the same questions (the evaluator asks them in one
    fixed order): the question-to-question spread cancels, which a difference of two means keeps."""
    diffs = [b - a for a, b in zip(before, after, strict=True)]
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)
    return Paired(mean, math.sqrt(variance / len(diffs)), len(diffs))


def question_rows(result_file: Path) -> list[dict[str, Any]]:
    """The per-question rows of an evaluation result (evals/step-N-<split>.json, `agentrun eval --out`)."""
    rows: list[dict[str, Any]] = json.loads(result_file.read_text())["questions"]
    return rows


def correct(rows: list[dict[str, Any]]) -> list[float]:
    return [float(bool(row["answer_correct"])) for row in rows]


def rewards(rows: list[dict[str, Any]]) -> list[float]:
    """Each question's reward; a failed one (no reward) counts as the worst, -2."""
    return [row["reward"] if row["reward"] is not None else -2.0 for row in rows]


def turned_right(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> int | None:
    """The first question answered wrongly before and correctly after, if any: one to read in full."""
    return next((a["scenario_id"] for b, a in zip(before, after, strict=True)
                 if a["answer_correct"] and not b["answer_correct"]), None)


def render_table(points: list[Point]) -> str:
    lines = [f"{'split':<11} {'step':>6}  {'model':<14} {'accuracy':>9} {'reward':>8} {'questions':>9}"]
    for p in points:
        model = p.model if len(p.model) <= 14 else "base"
        lines.append(f"{p.split:<11} {p.step:>6}  {model:<14} {p.answer_accuracy:>9.1%} {p.mean_reward:>8.3f} "
                     f"{p.questions:>9}")
    return "\n".join(lines)


def plot(points: list[Point], out: Path, title: str) -> None:
    """Reward and accuracy against step, one line per split."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or in a pod
    from matplotlib import pyplot

    figure, (reward_axis, accuracy_axis) = pyplot.subplots(1, 2, figsize=(10, 4))
    for split in sorted({p.split for p in points}):
        series = [p for p in points if p.split == split]
        steps = [p.step for p in series]
        reward_axis.plot(steps, [p.mean_reward for p in series], marker="o", label=split)
        accuracy_axis.plot(steps, [100 * p.answer_accuracy for p in series], marker="o", label=split)
    reward_axis.set(xlabel="step", ylabel="mean reward", title="reward")
    accuracy_axis.set(xlabel="step", ylabel="answer accuracy (%)", title="accuracy")
    for axis in (reward_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    pyplot.close(figure)
