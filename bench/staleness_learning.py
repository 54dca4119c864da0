"""Does pipelining cost learning? Quickstart runs with rollout.maxStaleness 0 and 1, seed by seed, paired.

Reads finished local runs (`agentrun run` of examples/quickstart.yaml with its own metadata.name,
training.seed and rollout.maxStaleness; the dataset and the tiny bootstrap shared). For each seed: each
run's held-out gain (last checkpoint minus the starting policy, paired per question), the k = 1 run's
last checkpoint minus the k = 0 run's on the same questions, and each run's GRPO and evaluation seconds
(timings.json). Across seeds: the mean of the per-seed differences with its standard error.

    PYTHONPATH=core:trainer:evaluator python bench/staleness_learning.py --root .agentrun \\
        --pair 0 qs-s0-k0 qs-s0-k1 --pair 1 qs-s1-k0 qs-s1-k1 [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from agentrun import storage
from agentrun.evaluator import compare

ROOT = Path(__file__).resolve().parent.parent
SPLIT = "test"


def final_step(run_dir: Path) -> int:
    return max(p.step for p in compare.load_points(run_dir) if p.split == SPLIT)


def scores(path: Path) -> dict[str, list[float]]:
    rows = compare.question_rows(path)
    return {"correct": compare.correct(rows), "reward": compare.rewards(rows)}


def paired(before: list[float], after: list[float]) -> dict[str, float]:
    return dataclasses.asdict(compare.paired(before, after))


def run_summary(layout: storage.Layout, name: str) -> tuple[dict[str, Any], dict[str, list[float]]]:
    run_dir = layout.run_dir(name)
    start = scores(layout.eval_result(name, 0, SPLIT))
    end = scores(layout.eval_result(name, final_step(run_dir), SPLIT))
    spec = json.loads(layout.run_json(name).read_text())["spec"]
    summary = {
        "run": name,
        "max_staleness": spec.get("rollout", {}).get("maxStaleness"),
        "accuracy": {"start": sum(start["correct"]) / len(start["correct"]),
                     "end": sum(end["correct"]) / len(end["correct"])},
        "gain": {m: paired(start[m], end[m]) for m in ("correct", "reward")},
        "phase_seconds": json.loads((run_dir / "timings.json").read_text()),
    }
    return summary, end


def pooled(differences: list[dict[str, float]]) -> dict[str, float]:
    """Mean of per-seed paired differences; its standard error from the per-seed ones (independent seeds)."""
    mean = sum(d["mean"] for d in differences) / len(differences)
    error = math.sqrt(sum(d["standard_error"] ** 2 for d in differences)) / len(differences)
    return {"mean": mean, "standard_error": error, "seeds": len(differences)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the runs' storage.localDir")
    parser.add_argument("--pair", nargs=3, action="append", required=True, metavar=("SEED", "K0_RUN", "K1_RUN"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "staleness_learning.json")
    args = parser.parse_args()
    layout = storage.Layout(args.root)
    seeds: dict[str, Any] = {}
    for seed, sync_name, pipelined_name in args.pair:
        sync, sync_end = run_summary(layout, sync_name)
        pipelined, pipelined_end = run_summary(layout, pipelined_name)
        seeds[seed] = {"k0": sync, "k1": pipelined,
                       "k1_minus_k0": {m: paired(sync_end[m], pipelined_end[m]) for m in ("correct", "reward")},
                       "grpo_speedup": sync["phase_seconds"]["grpo"] / pipelined["phase_seconds"]["grpo"]}
        difference = seeds[seed]["k1_minus_k0"]["correct"]
        print(f"seed {seed}: accuracy gain k0 {sync['gain']['correct']['mean']:+.3f} "
              f"k1 {pipelined['gain']['correct']['mean']:+.3f}; k1 - k0 {difference['mean']:+.3f} "
              f"+/- {difference['standard_error']:.3f}; grpo {sync['phase_seconds']['grpo']:.0f} s -> "
              f"{pipelined['phase_seconds']['grpo']:.0f} s", flush=True)
    report = {
        "split": SPLIT,
        "seeds": seeds,
        "k1_minus_k0": {m: pooled([s["k1_minus_k0"][m] for s in seeds.values()]) for m in ("correct", "reward")},
        "gain_k0": {m: pooled([s["k0"]["gain"][m] for s in seeds.values()]) for m in ("correct", "reward")},
        "gain_k1": {m: pooled([s["k1"]["gain"][m] for s in seeds.values()]) for m in ("correct", "reward")},
        "grpo_seconds": {k: sum(s[k]["phase_seconds"]["grpo"] for s in seeds.values()) for k in ("k0", "k1")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
