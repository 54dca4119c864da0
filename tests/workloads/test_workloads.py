"""The operator's Jobs, run as processes on this machine the way their pods run them: the prepare Job,
then the learner against a server whose filesystem resolver finds each new checkpoint by name (the
learner publishes nothing itself), then evaluation Jobs for one checkpoint and the final split; once with
`agentrun serve` and once with real vLLM (testkit/vllm.py) as the server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

pytest.importorskip("torch")

from agentrun import background, storage  # noqa: E402
from testkit import vllm  # noqa: E402
from testkit.cluster import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(900)


def run_workload(module: str, env: dict[str, str], *args: str, ok: bool = True) -> str:
    result = subprocess.run([sys.executable, "-m", f"agentrun.workloads.{module}", *args], env=env,
                            capture_output=True, text=True, timeout=600)
    assert (result.returncode == 0) == ok, f"{module}: exit {result.returncode}:\n{result.stdout[-2000:]}\n" \
                                           f"{result.stderr[-4000:]}"
    return result.stderr


@pytest.mark.parametrize("server_kind", ["agentrun", "vllm"])
def test_prepare_learner_and_evaluations_share_the_volume(tiny_dir: Path, tmp_path: Path, server_kind: str) -> None:
    root = tmp_path / "data"
    manifest = {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
        "metadata": {"name": "pods", "namespace": "team"},
        "spec": {
            "model": {"base": str(tiny_dir)},
            "dataset": {"name": "small", "emails": 1000},
            "environment": {"maxTurns": 2, "maxNewTokens": 24},
            "training": {"steps": 2, "scenariosPerStep": 2, "groupSize": 2, "checkpointEvery": 1},
            # On-policy (a cluster's default is 1): step 2 samples step 1's adapter, which the resolver must find.
            "rollout": {"concurrency": 4, "maxStaleness": 0},
            "evaluation": {"everySteps": 1, "limit": 3},
        },
    }
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(manifest))
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update(AGENTRUN_RUN_FILE=str(run_file), AGENTRUN_STORAGE=str(root), AGENTRUN_NAMESPACE="team",
               AGENTRUN_ENGINE="torch")
    layout = storage.Layout(root)

    run_workload("prepare", env)
    assert (layout.dataset_dir("small") / "emails.db").is_file()
    assert json.loads(layout.run_json("pods").read_text())["metadata"]["name"] == "pods"

    checkpoints = layout.checkpoints_dir("pods")
    assert checkpoints.is_dir()  # vLLM's filesystem resolver refuses to start on a missing directory
    server_args = ["--model", str(tiny_dir), "--adapters-dir", str(checkpoints), "--log-level", "warning"]
    # On a cluster the learner starts beside the server, which loads for minutes: it must wait, not fail.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["AGENTRUN_SERVER_URL"] = f"http://127.0.0.1:{port}/v1"
    learner = subprocess.Popen([sys.executable, "-m", "agentrun.workloads.learner", "--resume", "latest"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert learner.stdout is not None
    before, line = [], ""
    for line in learner.stdout:  # blocks until the learner says what it is doing (or exits)
        if line.startswith("waiting up to"):
            break
        before.append(line)
    assert line == f"waiting up to 1800 s for the server at http://127.0.0.1:{port}/health\n", "".join(before)
    server = background.ProcessServer.module("agentrun.serving.cli", server_args, port=port) \
        if server_kind == "agentrun" else vllm.server(tiny_dir, checkpoints, max_loras=4, port=port)
    with server.start(vllm.START_SECONDS):
        output, _ = learner.communicate(timeout=600)
        assert learner.returncode == 0, output[-4000:]
        steps = [json.loads(line) for line in (layout.run_dir("pods") / "steps.jsonl").read_text().splitlines()]
        assert [s["step"] for s in steps] == [1, 2]
        assert steps[1]["model"] == "step-000001"  # sampled from the resolver-loaded adapter
        assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000001", "step-000002"]

        run_workload("evaluator", env, "--step", "1")
        result = json.loads(layout.eval_result("pods", 1, "validation").read_text())
        assert result["model"] == "step-000001" and result["summary"]["questions"] == 3
        (checkpoints / "step-000002" / "trainer_state.pt").write_bytes(b"")  # a volume that filled up
        refused = run_workload("evaluator", env, "--step", "2", ok=False)
        assert "cannot evaluate step 2: " in refused and "trainer_state.pt" in refused and "Traceback" not in refused
        run_workload("evaluator", env, "--final")  # takes the newest intact checkpoint
        assert json.loads(layout.eval_result("pods", 1, "test").read_text())["model"] == "step-000001"
        assert layout.eval_result("pods", 0, "test").is_file()


def test_a_learner_whose_server_stops_answering_fails_its_liveness_probe(tiny_dir: Path, tmp_path: Path) -> None:
    """A hung rollout (the server SIGSTOPped, as a wedged vLLM is): the process lives on, but its /healthz
    turns 503 once no step has completed for learner.stallTimeoutSeconds, and it says why."""
    root = tmp_path / "data"
    manifest = {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun", "metadata": {"name": "stall"},
        "spec": {
            "model": {"base": str(tiny_dir)}, "dataset": {"name": "small", "emails": 1000},
            "environment": {"maxTurns": 2, "maxNewTokens": 24},
            "training": {"steps": 100, "scenariosPerStep": 2, "groupSize": 2, "checkpointEvery": 50},
            "evaluation": {"everySteps": 50, "limit": 3},
            "learner": {"stallTimeoutSeconds": 20},
        },
    }
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(manifest))
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update(AGENTRUN_RUN_FILE=str(run_file), AGENTRUN_STORAGE=str(root), AGENTRUN_ENGINE="torch")
    layout = storage.Layout(root)
    run_workload("prepare", env)
    server_args = ["--model", str(tiny_dir), "--adapters-dir", str(layout.checkpoints_dir("stall")), "--log-level",
                   "warning"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        liveness_port = probe.getsockname()[1]
    with background.ProcessServer.module("agentrun.serving.cli", server_args) as server:
        env["AGENTRUN_SERVER_URL"] = server.base_url
        learner = subprocess.Popen([sys.executable, "-m", "agentrun.workloads.learner", "--liveness-port",
                                    str(liveness_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        try:
            steps = layout.run_dir("stall") / "steps.jsonl"
            wait_until(lambda: steps.is_file() and steps.read_text().count("\n") >= 1 or learner.poll() is not None,
                       timeout=300, what="the learner's first step", interval=0.5)
            assert learner.poll() is None, learner.communicate()[0][-4000:]
            healthy = httpx.get(f"http://127.0.0.1:{liveness_port}/healthz", timeout=10)
            assert healthy.status_code == 200, healthy.text
            os.kill(server.pid, signal.SIGSTOP)
            try:
                stalled = wait_until(lambda: (r := httpx.get(f"http://127.0.0.1:{liveness_port}/healthz",
                                                             timeout=10)).status_code == 503 and r, timeout=120,
                                     what="/healthz answering 503", interval=1.0)
                assert "stalled: no step completed for" in stalled.text and learner.poll() is None
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            learner.kill()
            output = learner.communicate()[0]
    assert "liveness: stalled: no step completed for" in output
