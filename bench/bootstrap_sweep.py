"""Bootstrap sweep: several tiny-model bootstraps (copy curriculum + SFT) side by side, one JSON.

Each configuration is one `bench/tiny_model.py` process over the same dataset; they run in parallel (on
a GPU, where the sweep is cheap, or on the CPU) and the script merges their results, sorted by test
accuracy, into one file as each finishes. The padded tokens each run trained on are what it would cost
on the 2-core CPU machine: divide by that machine's training throughput (bench/tiny_model.py reports it).

    PYTHONPATH=core:trainer:evaluator python bench/bootstrap_sweep.py --device cuda --out FILE [--deadline S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agentrun.mailbox import build

D3 = ["--digits", "3", "--vocab", "4096"]  # digit groups of up to 3 as tokens (ids copy in half the tokens)
KV4 = ["--kv-heads", "4"]  # full multi-head attention instead of one shared key/value head
# name -> tiny_model.py arguments. The first sweep (bench/results/bootstrap_sweep_1.json) varied steps and
# learning rates on the default model; only runs with 800 curriculum steps learned to copy.
GRID: dict[str, list[str]] = {
    "d1-c600-s600": ["--curriculum-steps", "600", "--steps", "600"],
    "d3-c400-s400": [*D3, "--curriculum-steps", "400", "--steps", "400"],
    "d3-c600-s600": [*D3, "--curriculum-steps", "600", "--steps", "600"],
    "d3-c600-s400": [*D3, "--curriculum-steps", "600", "--steps", "400"],
    "kv4-d1-c600-s600": [*KV4, "--curriculum-steps", "600", "--steps", "600"],
    "kv4-d3-c400-s400": [*KV4, *D3, "--curriculum-steps", "400", "--steps", "400"],
    "kv4-d3-c600-s600": [*KV4, *D3, "--curriculum-steps", "600", "--steps", "600"],
    "kv4-d3-c600-s600-seed1": [*KV4, *D3, "--curriculum-steps", "600", "--steps", "600", "--seed", "1"],
    "h192l4-d3-c600-s600": ["--hidden", "192", "--layers", "4", *D3, "--curriculum-steps", "600", "--steps", "600"],
    "h192l4kv3-d3-c600-s600": ["--hidden", "192", "--layers", "4", "--kv-heads", "3", *D3, "--curriculum-steps",
                               "600", "--steps", "600"],
    "kv4-d3-c400-s600": [*KV4, *D3, "--curriculum-steps", "400", "--steps", "600"],
    "d3-c600-s600x2.5e-3": [*D3, "--curriculum-steps", "600", "--steps", "600", "--lr", "2.5e-3"],
    "kv4-d3-c300b64-s600": [*KV4, *D3, "--curriculum-steps", "300", "--curriculum-batch-size", "64", "--steps", "600"],
}
SMOKE: dict[str, list[str]] = {  # seconds on a CPU: checks the plumbing, not the recipe
    "smoke-a": ["--curriculum-steps", "2", "--steps", "2"],
    "smoke-b": ["--curriculum-steps", "0", "--steps", "2", "--hidden", "128", "--layers", "2"],
}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers that decide between configurations."""
    evaluation = result.get("evaluation", {})
    return {
        "answer_accuracy": evaluation.get("answer_accuracy"),
        "well_formed_tool_call_rate": evaluation.get("well_formed_tool_call_rate"),
        "mean_reward": evaluation.get("mean_reward"),
        "curriculum_last_loss": result["phases"].get("curriculum", {}).get("last_loss"),
        "sft_last_loss": result["phases"]["sft"]["last_loss"],
        "padded_tokens": sum(phase["padded_tokens"] for phase in result["phases"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grid", choices=["full", "smoke"], default="full")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/agentrun-bootstrap-sweep"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bootstrap_sweep.json")
    parser.add_argument("--deadline", type=float, default=3600, help="seconds before unfinished runs are stopped")
    args = parser.parse_args()
    grid = GRID if args.grid == "full" else SMOKE
    dataset = args.work / "dataset"
    if not dataset.is_dir():
        build.build("synthetic", dataset, seed=0, emails=args.emails)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    running = {}
    for name, extra in grid.items():
        command = [sys.executable, str(Path(__file__).parent / "tiny_model.py"), "--device", args.device,
                   "--precision", "fp32", "--questions", str(args.questions), "--dataset", str(dataset),
                   "--work", str(args.work / name), "--out", str(args.work / f"{name}.json"), *extra]
        log = (args.work / f"{name}.log").open("w")
        running[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    results: dict[str, Any] = {}
    stop_at = time.monotonic() + args.deadline
    while running and time.monotonic() < stop_at:
        for name, process in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            out = args.work / f"{name}.json"
            if process.returncode == 0:
                result = json.loads(out.read_text())
                results[name] = {"arguments": grid[name], **summary(result), "result": result}
            else:
                tail = (args.work / f"{name}.log").read_text()[-1500:]
                results[name] = {"arguments": grid[name], "failed": process.returncode, "log_tail": tail}
            ranked = dict(sorted(results.items(), key=lambda kv: -(kv[1].get("answer_accuracy") or -1)))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(ranked, indent=2))
            print(f"{name}: " + json.dumps({k: v for k, v in results[name].items() if k not in ("result", "log_tail")}),
                  flush=True)
        time.sleep(1)  # polling child processes; nothing to wait on in common
    for name, process in running.items():
        process.kill()
        print(f"{name}: stopped at the deadline", flush=True)


if __name__ == "__main__":
    main()
