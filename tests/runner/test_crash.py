"""`agentrun run` killed with SIGKILL at random moments (during rollouts, between rollouts and the save,
during the atomic save) and started again each time: no completed step is lost, no damaged checkpoint is
picked up, nothing is left behind (no staging directory, no orphaned model server), every step is logged
once, and the last adapter is the one an uninterrupted run of the same spec ends with.

The kill moments are found by watching the run directory, the way an operator would see the phases: a
staging directory is a save in flight, a step's trajectory file without its checkpoint is the update.
Note: the random tiny model's groups have equal rewards, so its updates change nothing here; the
learner's own crash test (tests/trainer/test_crash_loop.py) kills real updates."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
import yaml  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from agentrun import checkpoint_files  # noqa: E402
from testkit.cluster import free_port, wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(900)
STEPS = 6
SEED = int(os.environ.get("AGENTRUN_CRASH_SEED", "12"))


def manifest(path: Path, base: Path, root: Path) -> Path:
    spec = {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun", "metadata": {"name": "crash"},
        "spec": {
            "model": {"base": str(base)},
            "dataset": {"name": "small", "emails": 1000},
            "environment": {"maxTurns": 2, "maxNewTokens": 24},
            "training": {"steps": STEPS, "scenariosPerStep": 2, "groupSize": 2, "checkpointEvery": 3},
            "rollout": {"concurrency": 1},  # one request at a time: the server's batches, hence its samples, repeat
            "evaluation": {"everySteps": 3, "limit": 2},
            "storage": {"localDir": str(root)},
        },
    }
    path.write_text(yaml.safe_dump(spec))
    return path


class Run:
    """One `agentrun run` process (the run alone, as `kill -9 PID` would find it) and its server's port."""

    def __init__(self, spec: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agentrun.cli.main", "run", str(spec), "--no-progress",
                 "--server-port", str(self.port)], stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the run exited ({self.process.returncode}) before the kill: {self.log.read_text()[-3000:]}")

    def server_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False


def kill_when(run: Run, moment: Callable[[], bool], newest: Callable[[], int], what: str) -> int:
    """SIGKILL the run the first time `moment()` holds; returns the newest complete step at that instant.
    Its server must go with it."""
    wait_until(moment, timeout=300, what=what, interval=0.001, alive=run.alive)
    completed = newest()
    run.process.send_signal(signal.SIGKILL)
    run.process.wait(timeout=30)
    wait_until(lambda: not run.server_answers(), timeout=60, what="the killed run's server to stop")
    return completed


def adapter(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(directory / checkpoint_files.ADAPTER_WEIGHTS)


def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result(tiny_dir: Path, tmp_path: Path) -> None:
    straight = subprocess.run([sys.executable, "-m", "agentrun.cli.main", "run", "--no-progress",
                               str(manifest(tmp_path / "straight.yaml", tiny_dir, tmp_path / "straight"))],
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stdout[-2000:] + straight.stderr[-3000:]

    root = tmp_path / "killed"
    spec = manifest(tmp_path / "killed.yaml", tiny_dir, root)
    run_dir = root / "runs" / "crash"
    checkpoints, trajectories = run_dir / "checkpoints", run_dir / "trajectories"
    rng = random.Random(SEED)

    def newest() -> int:
        found = checkpoint_files.latest(checkpoints)
        return int(found.name.removeprefix("step-")) if found else 0

    def rollouts(run: Run, delay: float) -> Callable[[], bool]:
        """`delay` seconds into the rollouts of the step after the newest checkpoint (its due evaluation
        done, the step's trajectories not yet all in)."""
        began: list[float] = []

        def moment() -> bool:
            step = newest()
            evaluated = step % 3 != 0 or (run_dir / "evals" / f"step-{step:06d}-validation.json").exists()
            pending = not (trajectories / f"step-{step + 1:06d}.jsonl.gz").exists()
            if not (evaluated and pending and run.server_answers()):
                return False
            began[:] = began or [time.monotonic()]
            return time.monotonic() - began[0] >= delay
        return moment

    def save(run: Run) -> Callable[[], bool]:
        """A staging directory of this process's (one a killed run left is removed when the next resumes)."""
        before = set(os.listdir(checkpoints)) if checkpoints.is_dir() else set()

        def moment() -> bool:
            return checkpoints.is_dir() and any(checkpoint_files.LEFTOVER.match(name) and name not in before
                                                for name in os.listdir(checkpoints))
        return moment

    def evaluation(run: Run) -> Callable[[], bool]:
        """A due validation evaluation in flight: the step is saved, its result not yet written."""
        def moment() -> bool:
            step = newest()
            return step % 3 == 0 < step and not (run_dir / "evals" / f"step-{step:06d}-validation.json").exists()
        return moment

    kills = [("rollouts", lambda run: rollouts(run, rng.uniform(0, 0.8))), ("save", save),
             ("evaluation", evaluation), ("rollouts", lambda run: rollouts(run, rng.uniform(0, 0.8))),
             ("save", save)]
    log = tmp_path / "killed.log"
    for what, moment in kills:
        run = Run(spec, log)
        completed = kill_when(run, moment(run), newest, f"the run's {what}")
        print(f"killed during {what}, newest complete step {completed}")  # shown with -s
        assert newest() >= completed  # the kill lost no completed step
        for name in os.listdir(checkpoints) if checkpoints.is_dir() else []:  # no damaged checkpoint in view
            assert not checkpoint_files.STEP_DIR.match(name) or checkpoint_files.problem(checkpoints / name) is None
    final = Run(spec, log)
    assert final.process.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert f"test split, 2 questions: starting policy -> step {STEPS}" in log.read_text()

    straight_dir = tmp_path / "straight" / "runs" / "crash"
    assert checkpoint_files.intact(checkpoints) and [step for step, _ in checkpoint_files.intact(checkpoints)] == \
        [step for step, _ in checkpoint_files.intact(straight_dir / "checkpoints")]  # pruned alike
    assert [name for name in os.listdir(checkpoints) if name.startswith(".")] == []  # no staging left
    logged = [json.loads(line)["step"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert logged == list(range(1, STEPS + 1))
    expected = adapter(straight_dir / "checkpoints" / f"step-{STEPS:06d}")
    got = adapter(checkpoints / f"step-{STEPS:06d}")
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert sorted(p.name for p in (run_dir / "evals").iterdir()) == sorted(
        p.name for p in (straight_dir / "evals").iterdir())
