"""Steering runs on the test control plane: manifests from the example, waiting for phases and objects,
ending Job pods through kwok (testkit/kwok-stages.yaml), acting as a run's ServiceAccount."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import yaml

from agentrun.kube import Credentials, Kube
from agentrun.operator import children
from testkit.cluster import KubeAccess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "qwen3-4b-enron.yaml"
TIMEOUT = 90


SMALL = {"gpus": 1, "memory": "1Gi"}  # the fake nodes hold 16 GPUs and 512Gi between them


def manifest(name: str, ns: str, full_size: bool = False, **spec: Any) -> dict[str, Any]:
    """The example cluster run, renamed, with `spec` sections replaced (and small pods unless `full_size`)."""
    body = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": ns}
    if not full_size:
        body["spec"]["serving"]["resources"] = body["spec"]["learner"]["resources"] = dict(SMALL)
    body["spec"].update(copy.deepcopy(spec))
    return body


def run_status(kube: KubeAccess, ns: str, name: str) -> dict[str, Any]:
    return kube.get("agenttrainingrun", name, namespace=ns).get("status") or {}


def wait_phase(kube: KubeAccess, ns: str, name: str, phase: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return kube.wait_for(lambda: (s := run_status(kube, ns, name)).get("phase") == phase and s,
                         timeout=timeout, what=f"run {ns}/{name} phase {phase}")


def exists(kube: KubeAccess, kind: str, ns: str, name: str) -> bool:
    return kube.kubectl("get", kind, name, "-n", ns, check=False).returncode == 0


def wait_exists(kube: KubeAccess, kind: str, ns: str, name: str) -> dict[str, Any]:
    kube.wait_for(lambda: exists(kube, kind, ns, name), timeout=TIMEOUT, what=f"{kind} {ns}/{name}")
    return kube.get(kind, name, namespace=ns)


def end_pods(kube: KubeAccess, ns: str, job: str, exit_code: int) -> None:
    """Let kwok finish the Job's running pods with `exit_code`."""

    def running() -> list[str]:
        return [p["metadata"]["name"] for p in kube.get("pods", namespace=ns)["items"]
                if p["metadata"].get("labels", {}).get("job-name") == job
                and p.get("status", {}).get("phase") == "Running"]

    pods = kube.wait_for(running, timeout=TIMEOUT, what=f"running pods of Job {ns}/{job}")
    for pod in pods:
        kube.kubectl("annotate", "pod", pod, "-n", ns, f"agentrun.test/exit={exit_code}", "--overwrite")


def start_run(kube: KubeAccess, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    """Apply a run, finish its prepare Job, wait until it is Running; returns the manifest."""
    body = manifest(name, ns, **spec)
    kube.apply(body)
    wait_exists(kube, "job", ns, children.Names(name).prepare)
    end_pods(kube, ns, children.Names(name).prepare, 0)
    wait_phase(kube, ns, name, "Running")
    return body


def client_for(kubeconfig: Path) -> Kube:
    """agentrun's own REST client, authenticated as the kubeconfig's ServiceAccount token."""
    config = json.loads(kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    return Kube(Credentials(server=cluster["server"], token=user["token"],
                            ca_data=base64.b64decode(cluster["certificate-authority-data"]).decode()))


def events(kube: KubeAccess, ns: str, name: str) -> list[dict[str, Any]]:
    return [e for e in kube.get("events", namespace=ns)["items"] if e["involvedObject"].get("name") == name]
