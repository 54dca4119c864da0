"""The learner killed with SIGKILL in the middle of real updates and saves, then resumed, again and again:
the adapter it ends with is bit-identical to an uninterrupted run's, every step is logged once, and no
damaged checkpoint is ever in view. (tests/runner/test_crash.py does the same to `agentrun run` with its
server; there the random tiny model gives no update to interrupt.)

Phases are seen from the files a step leaves, as in a real run: its trajectories appear when the rollouts
are done, a staging directory while it is saved, its checkpoint when it is complete."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from agentrun import checkpoint_files  # noqa: E402
from testkit.cluster import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STEPS = 8
KILLS = int(os.environ.get("AGENTRUN_CRASH_KILLS", "6"))
SEED = int(os.environ.get("AGENTRUN_CRASH_SEED", "3"))


def start(policy_dir: Path, run_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.trainer.crash_worker", str(policy_dir), str(run_dir),
                                 str(STEPS)], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                stdout=out, stderr=subprocess.STDOUT)


def newest(checkpoints: Path) -> int:
    found = checkpoint_files.latest(checkpoints)
    return int(found.name.removeprefix("step-")) if found else 0


def moments(run_dir: Path) -> dict[str, Callable[[set[str], float], bool]]:
    """Each phase as a condition on the run directory, given the checkpoints directory's listing and the
    time when the process started (files a killed process left are not this one's)."""
    checkpoints, trajectories = run_dir / "checkpoints", run_dir / "trajectories"

    def update(before: set[str], started: float) -> bool:
        rollouts = trajectories / f"step-{newest(checkpoints) + 1:06d}.jsonl"
        try:
            return rollouts.stat().st_mtime >= started and not saving(before, started)
        except FileNotFoundError:
            return False

    def saving(before: set[str], started: float) -> bool:
        return checkpoints.is_dir() and any(checkpoint_files.LEFTOVER.match(name) and name not in before
                                            for name in os.listdir(checkpoints))

    def between_steps(before: set[str], started: float) -> bool:  # publish, prune, report, the next rollouts
        return newest(checkpoints) > max((int(n[5:]) for n in before if checkpoint_files.STEP_DIR.match(n)), default=0)

    return {"update": update, "save": saving, "after a save": between_steps}


def test_learner_killed_in_updates_and_saves_resumes_bit_identically(policy_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "learner.log"
    straight = start(policy_dir, tmp_path / "straight", log)
    assert straight.wait(timeout=300) == 0, log.read_text()[-3000:]

    run_dir = tmp_path / "killed"
    checkpoints = run_dir / "checkpoints"
    phases, rng, hit = moments(run_dir), random.Random(SEED), []
    for target in sorted(rng.choices(range(STEPS - 1), k=KILLS)):  # kill moments spread over the run's steps
        before = set(os.listdir(checkpoints)) if checkpoints.is_dir() else set()
        phase = rng.choice(sorted(phases))
        if newest(checkpoints) >= STEPS - 1:  # too late for a kill before the run ends
            continue
        started = time.time()
        process = start(policy_dir, run_dir, log)

        def alive() -> None:
            if process.poll() is not None:
                pytest.fail(f"the learner exited ({process.returncode}) before the kill: {log.read_text()[-3000:]}")

        wait_until(lambda: newest(checkpoints) >= target and phases[phase](before, started), timeout=300,
                   what=f"{phase} after step {target}", interval=0.0005, alive=alive)
        completed = newest(checkpoints)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        hit.append((phase, completed))
        assert newest(checkpoints) >= completed
        for name in os.listdir(checkpoints) if checkpoints.is_dir() else []:  # no damaged checkpoint in view
            assert not checkpoint_files.STEP_DIR.match(name) or checkpoint_files.problem(checkpoints / name) is None
    assert len(hit) >= 3, hit
    print("kills (phase, newest complete step):", hit)  # shown with -s: what a seed exercised
    final = start(policy_dir, run_dir, log)
    assert final.wait(timeout=300) == 0, log.read_text()[-3000:]

    expected = load_file(tmp_path / "straight" / "checkpoints" / f"step-{STEPS:06d}" / checkpoint_files.ADAPTER_WEIGHTS)
    got = load_file(checkpoints / f"step-{STEPS:06d}" / checkpoint_files.ADAPTER_WEIGHTS)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected), hit
    assert any(v.abs().sum() > 0 for k, v in got.items() if "lora_B" in k)  # the updates were real
    logged = [json.loads(line)["step"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert logged == list(range(1, STEPS + 1)), hit
    assert [n for n in os.listdir(checkpoints) if n.startswith(".")] == []
