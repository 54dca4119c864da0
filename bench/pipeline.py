"""Pipelined rollouts: steps per hour of the GRPO loop with rollout.maxStaleness k = 0, 1, 2, side by side.

The real loop and learner (agentrun.trainer.loop, LoRA on the tiny model, this machine's CPU) train on
rollouts from the scripted server (in its own process, as vLLM is), whose modelled per-request latency is
calibrated first so that sampling a step takes about as long as updating on it: the case overlap is for.
The scripted policy is the noisy one (a mistake on a fifth of its turns), so groups differ in reward and
every step trains. Its tokenizer's ids are their bytes; they are folded into the tiny model's vocabulary
(`in_vocabulary`), keeping every sample's length.

Per k: wall time of `--steps` steps, steps per hour over all of them and once the pipeline is full (the
first step's rollouts can overlap nothing, whatever k is: their wait is left out), the learner's idle
fraction (waiting for rollouts) and the sampler's (waiting for an adapter).

    PYTHONPATH=core:trainer:evaluator python bench/pipeline.py [--steps 8] [--out FILE]

Writes a JSON report (bench/results/pipeline.json by default) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from agentrun import storage
from agentrun.mailbox import build, writer
from agentrun.models import loading
from agentrun.rollout.driver import RolloutDriver
from agentrun.rollout.trajectory import Trajectory
from agentrun.scripted import serving
from agentrun.spec.models import TINY, EnvironmentSpec, RewardSpec, RolloutSpec
from agentrun.trainer import sft
from agentrun.trainer.ahead import Rollouts, version_name
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.loop import LoopSettings, StepRecord, TrainingLoop

BASE = "base"
CALIBRATION_LATENCY_MS = 100.0


def in_vocabulary(rollouts: Rollouts, vocabulary: int) -> Rollouts:
    """The scripted tokenizer's ids (up to 2**31) folded into the tiny model's vocabulary."""

    def fold(trajectory: Trajectory) -> Trajectory:
        turns = [turn.model_copy(update={"token_ids": [i % vocabulary for i in turn.token_ids or []],
                                         "prompt_token_ids": [i % vocabulary for i in turn.prompt_token_ids or []]})
                 for turn in trajectory.turns]
        return trajectory.model_copy(update={"turns": turns})

    return lambda step, name: [[fold(t) for t in group] for group in rollouts(step, name)]


def run_loop(args: argparse.Namespace, root: Path, dataset: Path, endpoint: str, staleness: int, steps: int,
             ) -> tuple[float, list[StepRecord]]:
    """`steps` steps of a fresh loop (same seed, same adapter initialisation for every k); wall seconds."""
    torch.manual_seed(0)
    model = sft.add_lora(loading.load_model(TINY, root), rank=8)
    learner = Learner(model, LearnerSettings(lr=5e-4), pad_id=0)
    scenarios = writer.load_scenarios(storage.scenarios_file(dataset))
    driver = RolloutDriver(endpoint, dataset, scenarios, RewardSpec(), per_step=args.questions,
                           group_size=args.group_size, seed=0, rollout=RolloutSpec(concurrency=32),
                           environment=EnvironmentSpec(max_turns=10))
    checkpoints = root / "runs" / f"k{staleness}-{time.monotonic_ns()}"
    loop = TrainingLoop(learner, BASE, checkpoints, in_vocabulary(driver, model.config.vocab_size),
                        lambda name, directory: None, LoopSettings(steps=steps, max_staleness=staleness))
    started = time.perf_counter()
    records = loop.run()
    return time.perf_counter() - started, records


def summarise(staleness: int, wall: float, records: list[StepRecord]) -> dict[str, Any]:
    rollout = sum(r.rollout_seconds for r in records)
    return {
        "max_staleness": staleness,
        "steps": len(records),
        "wall_seconds": round(wall, 1),
        "steps_per_hour": round(3600 * len(records) / wall, 1),
        # The first step's rollouts overlap nothing whatever k is: the rate once the pipeline is full.
        "steady_steps_per_hour": round(3600 * len(records) / (wall - records[0].learner_wait_seconds), 1),
        "rollout_seconds_mean": round(statistics.fmean(r.rollout_seconds for r in records), 2),
        "train_seconds_mean": round(statistics.fmean(r.train_seconds for r in records), 2),
        "learner_idle_fraction": round(sum(r.learner_wait_seconds for r in records) / wall, 3),
        "sampler_idle_fraction": round(max(0.0, wall - rollout) / wall, 3),
        "staleness_per_step": [r.staleness for r in records],
        "trained_tokens_mean": round(statistics.fmean(r.trained_tokens for r in records)),
        "reward_mean": round(statistics.fmean(r.reward_mean for r in records), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--questions", type=int, default=8, help="scenarios per step")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--stalenesses", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--latency-ms", type=float, default=None, help="default: calibrated (sampling ~ updating)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    names = tuple(version_name(v, BASE) for v in range(args.steps + 1))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dataset = root / "dataset"
        build.build("synthetic", dataset, seed=0, emails=2000, progress=False)
        latency = args.latency_ms
        calibration: dict[str, float] = {}
        if latency is None:  # one on-policy step at a known latency; rollouts scale with the latency
            with serving.ScriptedProcess(dataset, models=names, latency_ms=CALIBRATION_LATENCY_MS,
                                         policy="noisy") as server:
                _, records = run_loop(args, root, dataset, server.base_url, 0, steps=2)
            rollout, train = records[-1].rollout_seconds, records[-1].train_seconds
            latency = round(CALIBRATION_LATENCY_MS * train / rollout, 1)
            calibration = {"latency_ms": CALIBRATION_LATENCY_MS, "rollout_seconds": round(rollout, 2),
                           "train_seconds": round(train, 2)}
        results = []
        with serving.ScriptedProcess(dataset, models=names, latency_ms=latency, policy="noisy") as server:
            for staleness in args.stalenesses:
                wall, records = run_loop(args, root, dataset, server.base_url, staleness, args.steps)
                results.append(summarise(staleness, wall, records))
                print(json.dumps(results[-1]), flush=True)
    sync = next((r for r in results if r["max_staleness"] == 0), None)
    for result in results:
        if sync is not None:
            result["speedup_vs_sync"] = round(result["steps_per_hour"] / sync["steps_per_hour"], 3)
            result["steady_speedup_vs_sync"] = round(result["steady_steps_per_hour"] / sync["steady_steps_per_hour"], 3)
    report = {
        "benchmark": "pipeline",
        "latency_ms": latency,
        "calibration": calibration,
        "questions_per_step": args.questions,
        "group_size": args.group_size,
        "results": results,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "python": sys.version.split()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
