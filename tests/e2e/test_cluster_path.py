"""The cluster path executed, not faked: a small run of builtin:tiny applied to the real API server, the
real operator making its children, and their pods run as processes by the process kubelet
(testkit/kubelet.py): the prepare Job builds the dataset on the volume and links the model, the serving
Deployment's pod runs real vLLM, the learner Job's pod runs torchrun with two ranks on gloo (DeepSpeed),
evaluation Jobs evaluate checkpoints through vLLM, and the run reaches Succeeded. On the way, faults a
cluster deals in: the learner starts before vLLM is ready, the vLLM process is killed, the learner process
is killed, and vLLM is stopped (SIGSTOP) until the learner's progress-aware liveness probe replaces it.

The bootstrap of builtin:tiny (18 minutes of SFT on these CPUs) is the one thing not computed here: the
test seeds its cache on the volume with the untrained tiny model, as a second run on the same volume
finds it; everything after that cache lookup is the real code path."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from agentrun import pipeline, storage  # noqa: E402
from agentrun.operator import children  # noqa: E402
from agentrun.spec.models import AgentTrainingRun  # noqa: E402
from testkit import kubelet as process_kubelet  # noqa: E402
from testkit import vllm  # noqa: E402
from testkit.cluster import Cluster, KubeAccess  # noqa: E402
from testkit.operator_process import Operator  # noqa: E402
from tests.operator.steering import events, run_status  # noqa: E402

pytestmark = [pytest.mark.timeout(1500),
              pytest.mark.skipif(process_kubelet.available() is not None, reason=str(process_kubelet.available()))]
STEPS = 60  # a step takes about a second: enough of them that every fault lands mid-run
STALL_SECONDS = 25  # steps take seconds here; the stopped vLLM's own liveness probe kills it after 45-60 s
PHASE = 600  # seconds any one stage may take on 2 loaded cores (vLLM alone loads in about a minute)


@pytest.fixture
def kubelet(kube: KubeAccess, tmp_path: Path) -> Iterator[process_kubelet.ProcessKubelet]:
    if not isinstance(kube, Cluster):
        pytest.skip("the process kubelet needs the throwaway control plane's admin certificate")
    pki = kube.workdir / "pki"
    credentials = process_kubelet.Credentials(server=kube.server, ca_path=str(pki / "ca.crt"),
                                              cert_path=str(pki / "admin.crt"), key_path=str(pki / "admin.key"))
    defaults = children.Defaults()
    images = {
        # the trainer image is this project's environment; the CPU serving image is the vLLM one make vllm builds
        defaults.trainer.rsplit(":", 1)[0]: process_kubelet.Image(Path(sys.executable).parent,
                                                                  {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}),
        defaults.serving_cpu.rsplit(":", 1)[0]: process_kubelet.Image(vllm.vllm_bin().parent, {
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}),
    }
    with process_kubelet.ProcessKubelet(credentials, images, tmp_path / "kubelet",
                                        node=f"process-{uuid.uuid4().hex[:6]}") as running:
        yield running


def manifest(name: str, ns: str, node: str, storage_class: str) -> dict[str, Any]:
    return {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"base": "builtin:tiny", "dtype": "float32"},
            "dataset": {"name": "small", "emails": 1000},
            "environment": {"maxTurns": 2, "maxNewTokens": 24},
            "training": {"steps": STEPS, "scenariosPerStep": 2, "groupSize": 2, "checkpointEvery": 1},
            "rollout": {"concurrency": 4},
            "evaluation": {"everySteps": 30, "limit": 3},
            "serving": {"resources": {"gpus": 0}},
            "learner": {"resources": {"gpus": 2}, "retries": 8, "stallTimeoutSeconds": STALL_SECONDS},
            "storage": {"pvc": {"size": "1Gi", "storageClassName": storage_class}},
            "pods": {"all": {"nodeSelector": {process_kubelet.NODE_LABEL: node},
                             "tolerations": [{"key": process_kubelet.TAINT["key"], "operator": "Exists",
                                              "effect": "NoSchedule"}]}},
        },
    }


def pods(kube: KubeAccess, ns: str, component: str) -> list[dict[str, Any]]:
    return [p for p in kube.get("pods", namespace=ns)["items"]
            if p["metadata"]["labels"].get(children.COMPONENT_LABEL) == component]


def running_pod(kube: KubeAccess, ns: str, component: str) -> dict[str, Any] | None:
    return next((p for p in pods(kube, ns, component) if p.get("status", {}).get("phase") == "Running"
                 and not p["metadata"].get("deletionTimestamp")), None)


def condition(kube: KubeAccess, ns: str, name: str, kind: str) -> dict[str, Any]:
    return next((c for c in run_status(kube, ns, name).get("conditions", []) if c["type"] == kind), {})


def step(kube: KubeAccess, ns: str, name: str) -> int:
    return int(run_status(kube, ns, name).get("progress", {}).get("step", 0))


def test_a_run_on_the_real_api_server_trains_through_real_vllm_and_survives_its_faults(
    kube: KubeAccess, operator: Operator, kubelet: process_kubelet.ProcessKubelet,
    namespace: Callable[[str], str], tiny_dir: Path, tmp_path: Path,
) -> None:
    ns, name, storage_class = namespace("e2e"), "tiny", f"testkit-{uuid.uuid4().hex[:8]}"
    volume = tmp_path / "volume"
    kube.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": storage_class},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                         "storageClassName": storage_class, "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": str(volume)}}})
    body = manifest(name, ns, kubelet.node, storage_class)
    layout = storage.Layout(volume)
    bootstrap = pipeline.bootstrap_dir(AgentTrainingRun.model_validate(body), layout)
    shutil.copytree(tiny_dir, bootstrap)
    try:
        kube.apply(body)
        train(kube, kubelet, ns, name, layout, bootstrap)
    except BaseException:
        print(kubelet.describe())
        raise
    finally:
        kube.kubectl("delete", "atr", name, "-n", ns, "--wait=false", check=False)
        kube.kubectl("delete", "pv", storage_class, "--wait=false", check=False)


def train(kube: KubeAccess, kubelet: process_kubelet.ProcessKubelet, ns: str, name: str, layout: storage.Layout,
          bootstrap: Path) -> None:
    names = children.Names(name)

    # The learner starts beside the server and waits for it while the run says so.
    kube.wait_for(lambda: condition(kube, ns, name, "ServingReady").get("reason") == "ServerStarting", timeout=PHASE,
                  what="ServingReady=False (ServerStarting) once prepared, while vLLM loads")
    first = kube.wait_for(lambda: running_pod(kube, ns, "learner"), timeout=PHASE, what="a running learner pod")
    kube.wait_for(lambda: "waiting up to" in kubelet.container_log(ns, first["metadata"]["name"], "learner"),
                  timeout=PHASE, what="the learner waiting for the server")
    assert running_pod(kube, ns, "serve") is None or not all(
        c["ready"] for c in running_pod(kube, ns, "serve")["status"]["containerStatuses"])
    prepared = next(p for p in pods(kube, ns, "prepare"))
    assert prepared["status"]["phase"] == "Succeeded"
    assert (layout.dataset_dir("small") / "emails.db").is_file()
    assert Path(layout.served_base(name, "builtin:tiny")).resolve() == bootstrap.resolve()  # linked by prepare

    # vLLM killed mid-run: the kubelet restarts it in its pod, adapters are resolved by name again, and the
    # same learner waits for it and runs the step it could not sample again.
    kube.wait_for(lambda: step(kube, ns, name) >= 1, timeout=PHASE, what="step 1")
    learner = running_pod(kube, ns, "learner")
    assert learner is not None
    os.killpg(kubelet.process(ns, names.serve).pid, signal.SIGKILL)
    outage = kube.wait_for(lambda: re.search(r"then step (\d+) again", kubelet.container_log(
        ns, learner["metadata"]["name"], "learner")), timeout=PHASE, what="the learner waiting for vLLM to come back")
    kube.wait_for(lambda: step(kube, ns, name) >= int(outage.group(1)), timeout=PHASE,
                  what="the step vLLM did not answer, done after its restart")
    assert running_pod(kube, ns, "serve")["status"]["containerStatuses"][0]["restartCount"] >= 1
    assert running_pod(kube, ns, "learner")["metadata"]["uid"] == learner["metadata"]["uid"]

    # The learner killed mid-run: its Job replaces the pod, which resumes from the newest checkpoint.
    before = step(kube, ns, name)
    os.killpg(kubelet.process(ns, names.learner).pid, signal.SIGKILL)
    replacement = kube.wait_for(lambda: (p := running_pod(kube, ns, "learner")) and p["metadata"]["uid"] != learner["metadata"]["uid"] and p,
                                timeout=PHASE, what="a replacement learner pod")
    resumed = kube.wait_for(lambda: re.search(r"resumed from checkpoint step (\d+)", kubelet.container_log(
        ns, replacement["metadata"]["name"], "learner")), timeout=PHASE, what="the replacement resuming")
    assert int(resumed.group(1)) >= before  # every step is checkpointed: none that completed is lost

    # vLLM stopped (a wedged server): the learner's liveness probe fails once no step completes for
    # stallTimeoutSeconds; it says why in an Event and its pod is replaced.
    at_stop = step(kube, ns, name)
    kube.wait_for(lambda: step(kube, ns, name) > at_stop, timeout=PHASE, what="a step of the replacement")
    stalled_pod = running_pod(kube, ns, "learner")
    assert stalled_pod is not None
    server = kubelet.process(ns, names.serve)
    os.killpg(server.pid, signal.SIGSTOP)
    try:
        event = kube.wait_for(lambda: next((e for e in events(kube, ns, name) if e["reason"] == "LearnerStalled"), None),
                              timeout=PHASE, what="a LearnerStalled Event")
        shown = kube.wait_for(lambda: (c := condition(kube, ns, name, "Training"))["reason"] in (
            "LearnerStalled", "LearnerRestarting") and c, timeout=PHASE, what="the run's reason saying so")
        kube.wait_for(lambda: "terminated" in kube.get("pod", stalled_pod["metadata"]["name"], namespace=ns)[
            "status"]["containerStatuses"][0]["state"], timeout=PHASE, what="the stalled learner killed by its probe")
    finally:
        with contextlib.suppress(ProcessLookupError):  # or vLLM's own liveness probe has restarted it
            os.killpg(server.pid, signal.SIGCONT)
    assert event["type"] == "Warning" and "no step completed for" in event["message"]
    assert shown["reason"] == "LearnerRestarting" or shown["message"] == event["message"]
    assert "liveness probe failed" in kubelet.container_log(ns, stalled_pod["metadata"]["name"], "learner")
    kube.wait_for(lambda: (p := running_pod(kube, ns, "learner")) and p["metadata"]["uid"] != stalled_pod["metadata"]["uid"],
                  timeout=PHASE, what="the stalled learner's pod replaced")

    # The run finishes: every step once, each sampled from the adapter two steps before it (rollout.maxStaleness
    # is 1 on a cluster: step s + 1 is sampled while step s trains), the evaluations done.
    kube.wait_for(lambda: run_status(kube, ns, name).get("phase") in ("Succeeded", "Failed"), timeout=PHASE * 2,
                  what="the run finishing")
    status = run_status(kube, ns, name)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    row = kube.kubectl("get", "atr", name, "-n", ns, "--no-headers").stdout.split()
    assert row[1:3] == ["Succeeded", str(STEPS)]
    records = [json.loads(line) for line in (layout.run_dir(name) / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert [r["model"] for r in records[2:]] == [storage.checkpoint_name(s) for s in range(1, STEPS - 1)]
    assert {r["staleness"] for r in records[1:]} == {1}
    for evaluated in (30, 60):
        assert json.loads(layout.eval_result(name, evaluated, "validation").read_text())["summary"]["questions"] == 3
    assert json.loads(layout.eval_result(name, STEPS, "test").read_text())["model"] == storage.checkpoint_name(STEPS)
    assert kubelet.errors == []
