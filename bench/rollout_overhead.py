"""Rollout overhead: how much the rollout client adds on top of the model server's own latency.

64 trajectories of exactly 5 turns run concurrently against the scripted server (in its own process,
as a model server is) with a modelled 50 ms per request. Since they all run at once, the ideal batch
time is 5 x 50 ms; efficiency = ideal / measured. What is left is the client (its HTTP stack, parsing
replies, building turns), the environment's tool calls, the event loop, and the server's HTTP
handling, which a real vLLM does in the same way. Client CPU is this process's; server CPU is the child's
(from /proc). Other work on the machine shows in the load average, reported before and after.

    PYTHONPATH=core python bench/rollout_overhead.py [--latency-ms 50] [--trajectories 64] [--out FILE]

Writes a JSON report (bench/results/rollout_overhead.json by default) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentrun import storage
from agentrun.environment.judge import DeterministicJudge
from agentrun.mailbox import build, queries, schema, writer
from agentrun.mailbox.records import Scenario
from agentrun.rollout.client import RolloutClient
from agentrun.rollout.trajectory import Trajectory
from agentrun.scripted import serving
from agentrun.spec.models import EnvironmentSpec, RolloutSpec

MODEL = "scripted"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    seconds: float
    client_cpu: float
    server_cpu: float
    trajectories: list[Trajectory]


async def _batch(client: RolloutClient, scenarios: list[Scenario]) -> tuple[float, list[Trajectory]]:
    started = time.perf_counter()
    groups = await client.run_groups(scenarios, MODEL, 1, temperature=1.0)
    return time.perf_counter() - started, [group[0] for group in groups]


async def measure(args: argparse.Namespace, dataset: Path, base_url: str, server_pid: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    candidates = writer.load_scenarios(storage.scenarios_file(dataset))[: args.trajectories * 3]
    settings = RolloutSpec(concurrency=args.trajectories, request_timeout_seconds=30)
    with queries.Mailbox(dataset / schema.EMAILS_DB) as mailbox:
        async with RolloutClient(base_url, settings, EnvironmentSpec(), mailbox, DeterministicJudge()) as client:
            # Warm-up: opens the connections and selects scenarios whose episode takes exactly `turns` turns.
            _, warm = await _batch(client, candidates)
            chosen = [c for c, t in zip(candidates, warm, strict=True) if not t.failed and len(t.turns) == args.turns]
            if len(chosen) < args.trajectories:
                raise SystemExit(f"only {len(chosen)} scenarios take exactly {args.turns} turns; use a larger dataset")
            scenarios = chosen[: args.trajectories]
            runs = []
            for _ in range(args.repeats):
                client_cpu, server_cpu = time.process_time(), _cpu_seconds(server_pid)
                elapsed, trajectories = await _batch(client, scenarios)
                client_cpu, server_cpu = time.process_time() - client_cpu, _cpu_seconds(server_pid) - server_cpu
                runs.append(Run(elapsed, client_cpu, server_cpu, trajectories))
        async with httpx.AsyncClient() as http:
            server_stats = (await http.get(base_url.removesuffix("/v1") + "/scripted/stats")).json()
    ideal = args.turns * args.latency_ms / 1000
    median = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    turns = [turn for trajectory in median.trajectories for turn in trajectory.turns]
    requests = len(turns)
    return {
        "benchmark": "rollout_overhead",
        "trajectories": args.trajectories,
        "turns_per_trajectory": args.turns,
        "latency_ms": args.latency_ms,
        "ideal_seconds": ideal,
        "measured_seconds": round(median.seconds, 4),
        "efficiency": round(ideal / median.seconds, 3),
        "all_runs_seconds": [round(run.seconds, 4) for run in runs],
        "failed_trajectories": sum(t.failed for t in median.trajectories),
        "requests": requests,
        "turn_latency_ms": {
            "mean": round(1000 * statistics.fmean(t.latency_seconds for t in turns), 2),
            "max": round(1000 * max(t.latency_seconds for t in turns), 2),
        },
        "client_cpu_ms_per_request": round(1000 * median.client_cpu / requests, 3),
        "server_cpu_ms_per_request": round(1000 * median.server_cpu / requests, 3),
        "env_ms_per_trajectory": round(1000 * statistics.fmean(t.timings.env_seconds for t in median.trajectories), 2),
        "server_max_in_flight": server_stats["max_in_flight"],
        "cpus": os.cpu_count(),
        # other work on the machine skews every number
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="dataset directory (default: a fresh synthetic one)")
    parser.add_argument("--emails", type=int, default=2000, help="size of the synthetic dataset")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="measured batches; the median is reported")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rollout_overhead.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        dataset = args.dataset
        if dataset is None:
            dataset = Path(scratch) / "dataset"
            build.build("synthetic", dataset, seed=0, emails=args.emails, progress=False)
        with serving.ScriptedProcess(
            dataset, models=(MODEL,), latency_ms=args.latency_ms, min_turns=args.turns
        ) as server:
            report = asyncio.run(measure(args, dataset, server.base_url, server.pid))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
