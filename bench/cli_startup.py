"""CLI start-up bench: how long `agentrun --help` and `agentrun validate` take, in fresh processes.

Each command runs `--runs` times as `python -m agentrun.cli.main ...`; the median wall time is reported,
with the 1-minute load average, and whether the process imported torch (it must not: the CLI imports a
command's module only when that command runs).

    PYTHONPATH=core:trainer:evaluator:operator python bench/cli_startup.py [--runs 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runs the CLI in-process like the console script does, then reports whether heavy frameworks loaded.
PROBE = ("import sys; from agentrun.cli.main import cli\n"
         "try: cli.main(sys.argv[1:], standalone_mode=False)\n"
         "finally: print('HEAVY', sorted(m for m in ('torch', 'transformers', 'peft', 'deepspeed') if m in sys.modules),"
         " file=sys.stderr)")
COMMANDS = {"--help": ["--help"], "validate": ["validate", str(ROOT / "examples" / "quickstart.yaml")]}


def measure(args: list[str], runs: int) -> dict[str, object]:
    seconds, heavy = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
        seconds.append(time.perf_counter() - started)
        heavy = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY"))
    return {"median_seconds": round(statistics.median(seconds), 3), "runs": runs, "imported": heavy[6:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli_startup.json")
    args = parser.parse_args()
    result = {"load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
              "commands": {name: measure(argv, args.runs) for name, argv in COMMANDS.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
