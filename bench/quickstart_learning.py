"""Does the quickstart's RL learn? Paired, several seeds, against an equal-compute SFT control.

For each seed: `agentrun run` on the quickstart manifest (its own run name and training seed; the
dataset and the tiny model's bootstrap are shared), then a control that spends the run's GRPO wall time
(rollouts + updates, from steps.jsonl) on more SFT of the same starting policy instead. All three
policies (start, RL, control) answer the same held-out test questions; differences are paired per
question, with standard errors (DESIGN §9: small gains need this to be believed).

    PYTHONPATH=core:trainer:evaluator python bench/quickstart_learning.py [--seeds 0 1 2] [--out FILE]
    PYTHONPATH=core:trainer:evaluator python bench/quickstart_learning.py --hard --seeds 0   # the benchmark task

`--hard` runs the same manifest on the default (hard) dataset settings: Enron-style message ids and
every hard distractor, so that the quickstart's easy task is never mistaken for the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from agentrun import background, demonstrations, pipeline, storage
from agentrun.environment import judge as judges
from agentrun.evaluator import benchmark, compare
from agentrun.spec.models import AgentTrainingRun
from agentrun.trainer import sft

ROOT = Path(__file__).resolve().parent.parent
# The spec's defaults for the synthetic mailbox (DatasetSpec), under a dataset name of their own.
HARD_DATASET = {"name": "quickstart-hard", "messageIdStyle": "enron", "hardDistractors": 1.0, "emailsPerInbox": 500}


def paired(before: list[float], after: list[float]) -> dict[str, float]:
    return dataclasses.asdict(compare.paired(before, after))


def scores(path: Path) -> dict[str, list[float]]:
    rows = compare.question_rows(path)
    return {"correct": compare.correct(rows), "reward": compare.rewards(rows)}


def evaluate_model(model_dir: Path, run: AgentTrainingRun, dataset_dir: Path, out: Path) -> None:
    """The control policy (a full model directory) on the run's final split, through `agentrun serve`."""
    spec = run.spec
    scenarios = benchmark.select_scenarios(dataset_dir, spec.evaluation.final_split, spec.evaluation.limit)
    with background.ProcessServer.module("agentrun.serving.cli", ["--model", str(model_dir), "--log-level", "warning"]) as server:
        result = asyncio.run(benchmark.evaluate(
            server.base_url, str(model_dir), dataset_dir, judges.make_judge(spec.reward.judge), scenarios,
            split=spec.evaluation.final_split, rollout=spec.rollout, environment=spec.environment, reward=spec.reward,
        ))
    benchmark.write_result(out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path("/tmp/agentrun-learning"))
    parser.add_argument("--hard", action="store_true", help="the default (hard) dataset settings instead")
    parser.add_argument("--out", type=Path, help="default: bench/results/quickstart_learning[_hard].json")
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / "results" / f"quickstart_learning{'_hard' if args.hard else ''}.json"
    base_spec = yaml.safe_load(args.manifest.read_text())
    if args.hard:
        base_spec["spec"]["dataset"] = {**base_spec["spec"]["dataset"], **HARD_DATASET}
    results: dict[str, Any] = {"manifest": str(args.manifest), "hard": args.hard, "native_bf16": sft.native_bf16(),
                               "seeds": {}}
    for seed in args.seeds:
        name = f"learning{'-hard' if args.hard else ''}-seed{seed}"
        manifest = {**base_spec, "metadata": {"name": name}}
        manifest["spec"] = {**manifest["spec"], "storage": {"localDir": str(args.root)},
                            "training": {**manifest["spec"]["training"], "seed": seed}}
        path = args.root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(manifest))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "agentrun.cli.main", "run", str(path), "--no-progress"], check=True)
        run_seconds = time.perf_counter() - started
        run = AgentTrainingRun.model_validate(manifest)
        layout = storage.Layout(args.root)
        steps = [json.loads(line) for line in (layout.run_dir(name) / "steps.jsonl").read_text().splitlines()]
        rl_seconds = sum(s["rollout_seconds"] + s["train_seconds"] + s["save_seconds"] for s in steps)

        dataset_dir = layout.dataset_dir(run.spec.dataset.name)
        start_model = pipeline.bootstrap_dir(run, layout)
        control_dir = layout.run_dir(name) / "control"
        if not (control_dir / "config.json").is_file():
            settings = dataclasses.replace(sft.TINY_BOOTSTRAP, curriculum_steps=0, language_steps=0, seed=seed,
                                           time_budget_seconds=rl_seconds, progress=False)
            learned = benchmark.training_scenarios(dataset_dir, run.spec.evaluation.limit)  # what RL draws from
            shown = demonstrations.oracle_for(dataset_dir, learned, seed=seed)
            sft.fine_tune(str(start_model), args.root, shown, settings, control_dir)
        split = run.spec.evaluation.final_split
        control_eval = layout.run_dir(name) / "evals" / f"control-{split}.json"
        if not control_eval.is_file():
            evaluate_model(control_dir, run, dataset_dir, control_eval)

        start = scores(layout.eval_result(name, 0, split))
        end = scores(layout.eval_result(name, run.spec.training.steps, split))
        control = scores(control_eval)
        results["seeds"][str(seed)] = {
            "run_seconds": run_seconds, "rl_seconds": rl_seconds,
            "phase_seconds": json.loads((layout.run_dir(name) / "timings.json").read_text()),
            "accuracy": {k: sum(v["correct"]) / len(v["correct"]) for k, v in
                         (("start", start), ("rl", end), ("control", control))},
            "mean_reward": {k: sum(v["reward"]) / len(v["reward"]) for k, v in
                            (("start", start), ("rl", end), ("control", control))},
            "rl_minus_start": {m: paired(start[m], end[m]) for m in ("correct", "reward")},
            "rl_minus_control": {m: paired(control[m], end[m]) for m in ("correct", "reward")},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results["seeds"][str(seed)], indent=2), flush=True)


if __name__ == "__main__":
    main()
