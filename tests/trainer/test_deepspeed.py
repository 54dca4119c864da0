"""The DeepSpeed engine runs the same loss as the torch engine: two processes of ZeRO-2 or ZeRO-3 (gloo
on CPU, started like `torchrun` starts them) end a step with the weights one torch process reaches, and
a DeepSpeed run resumes exactly from its checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("deepspeed")

from safetensors.torch import load_file  # noqa: E402

from agentrun.trainer.learner import Learner  # noqa: E402

from .deepspeed_worker import learner_settings, lora_policy, run_steps, trained_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world_size: int, *args: str) -> list[str]:
    """Start `world_size` worker processes as torchrun would, wait for all of them, return their output."""
    port = str(free_port())
    processes = []
    for rank in range(world_size):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        processes.append(subprocess.Popen([sys.executable, "-m", "tests.trainer.deepspeed_worker", *args],
                                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    return [output if p.returncode == 0 else f"exit {p.returncode}: {output}"
            for p, output in zip(processes, outputs, strict=True)]


def launch_ok(world_size: int, *args: str) -> None:
    for rank, output in enumerate(launch(world_size, *args)):
        assert not output.startswith("exit "), f"rank {rank} failed:\n{output[-4000:]}"


@pytest.mark.parametrize("zero_stage", [2, 3])  # several micro-batches per rank, one rank short of work
def test_two_deepspeed_processes_reach_the_weights_of_one_torch_process(
    policy_dir: Path, tmp_path: Path, zero_stage: int
) -> None:
    settings = learner_settings("torch", zero_stage)
    initial = trained_weights(Learner(lora_policy(policy_dir), settings, pad_id=0))
    expected, expected_metrics = run_steps(policy_dir, settings)
    launch_ok(2, "steps", str(policy_dir), str(tmp_path), str(zero_stage))
    got = torch.load(tmp_path / "weights.pt", weights_only=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert got.keys() == expected.keys()
    for name in expected:
        # Compared as updates, norm-wise. Two processes sum float32 gradients in another order than one
        # (relative error ~1e-7 per sum, more on another CPU's kernels), and Adam divides each element by
        # its own gradient's magnitude, so elements whose gradient is near zero differ by a large relative
        # amount (3.7% was seen on a 1e-6 absolute difference). Over a whole tensor that stays below 1e-4
        # of the update's norm; the bugs this test is for (a micro-batch's gradients lost or counted twice,
        # ZeRO-3 overwriting accumulated gradients) change the update by tens of percent.
        update, reference = got[name] - initial[name], expected[name] - initial[name]
        assert float((update - reference).norm()) <= 1e-3 * float(reference.norm()), name
    assert any(v.abs().sum() > 0 for k, v in got.items() if "lora_B" in k)  # it did train
    for mine, reference in zip(metrics, expected_metrics, strict=True):
        assert mine["trained_tokens"] == reference["trained_tokens"]
        assert mine["loss"] == pytest.approx(reference["loss"], rel=1e-4, abs=1e-6)
        assert mine["grad_norm"] == pytest.approx(reference["grad_norm"], rel=1e-4)


def test_a_deepspeed_run_resumes_exactly(policy_dir: Path, tmp_path: Path) -> None:
    launch_ok(2, "loop", str(policy_dir), str(tmp_path / "straight"), "2", "4")
    launch_ok(2, "loop", str(policy_dir), str(tmp_path / "resumed"), "2", "2")
    launch_ok(2, "loop", str(policy_dir), str(tmp_path / "resumed"), "2", "4")
    expected = load_file(tmp_path / "straight" / "step-000004" / "adapter_model.safetensors")
    got = load_file(tmp_path / "resumed" / "step-000004" / "adapter_model.safetensors")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert any(v.abs().sum() > 0 for k, v in got.items() if "lora_B" in k)
    assert sorted(p.name for p in (tmp_path / "resumed" / "step-000004" / "deepspeed" / "state").iterdir())

    [output] = launch(1, "loop", str(policy_dir), str(tmp_path / "resumed"), "2", "6")  # one process now
    assert output.startswith("exit ") and "written by 2 learner processes and this learner has 1" in output
