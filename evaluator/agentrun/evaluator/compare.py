"""Compare the evaluations of a run's checkpoints: a table by step and a PNG of reward and accuracy.

Reads `runs/<run>/evals/step-NNNNNN-<split>.json` (DESIGN §2), so it works on a finished run, a run in
progress, or one copied off a cluster's volume.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

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
