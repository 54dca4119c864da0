"""Smoke tests of the real control plane: the controllers, the scheduler, kwok and RBAC all work."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from testkit.cluster import BUILD_SCRIPT, GPU_RESOURCE, Cluster, KubeAccess


def _condition(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in obj.get("status", {}).get("conditions") or [])


def test_server_reports_the_pinned_version(kube: KubeAccess) -> None:
    if not isinstance(kube, Cluster):
        pytest.skip("an existing cluster runs its own version")
    pinned = re.search(r"^KUBE_VERSION=(\S+)", (BUILD_SCRIPT.parent / "versions.env").read_text(), re.M)
    assert pinned
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == pinned.group(1)
    assert version["clientVersion"]["gitVersion"] == pinned.group(1)


def test_job_completes_on_a_fake_node(kube: KubeAccess, ns: str) -> None:
    kube.apply({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello", "namespace": ns},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
        }}},
    })
    def complete() -> dict[str, Any] | None:
        job = kube.get("job", "hello", namespace=ns)
        return job if _condition(job, "Complete") else None

    job = kube.wait_for(complete, timeout=120, what="Job hello Complete")
    assert job["status"]["succeeded"] == 1
    pods = kube.get("pods", namespace=ns)["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] in kube.nodes


def test_deployment_pod_runs_on_a_gpu_node(kube: KubeAccess, ns: str) -> None:
    kube.apply({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gpu", "namespace": ns},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "gpu"}},
            "template": {"metadata": {"labels": {"app": "gpu"}}, "spec": {"containers": [{
                "name": "c", "image": "trainer:latest",
                "resources": {"limits": {GPU_RESOURCE: "2"}},
            }]}},
        },
    })

    def running_pod() -> dict[str, Any] | None:
        for pod in kube.get("pods", namespace=ns)["items"]:
            if pod["status"].get("phase") == "Running" and _condition(pod, "Ready"):
                return pod
        return None

    pod = kube.wait_for(running_pod, timeout=120, what="Deployment pod Running")
    assert pod["spec"]["nodeName"] in kube.nodes
    assert pod["spec"]["containers"][0]["resources"]["requests"][GPU_RESOURCE] == "2"
    # ReplicaSet controller owns the pod; the Deployment reports it available.
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    kube.wait_for(lambda: kube.get("deployment", "gpu", namespace=ns)["status"].get("availableReplicas") == 1,
                  timeout=60, what="Deployment available")


def test_garbage_collector_removes_dependents(kube: KubeAccess, ns: str) -> None:
    kube.kubectl("create", "configmap", "owner", "-n", ns)
    owner = kube.get("configmap", "owner", namespace=ns)
    kube.apply({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "namespace": ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]},
        "data": {"k": "v"},
    })
    kube.kubectl("delete", "configmap", "owner", "-n", ns, "--wait=false")

    def dependent_gone() -> bool:
        proc = kube.kubectl("get", "configmap", "dependent", "-n", ns, check=False)
        return proc.returncode != 0 and "NotFound" in proc.stderr

    kube.wait_for(dependent_gone, timeout=60, what="garbage collection of the dependent ConfigMap")


def test_service_account_token_is_subject_to_rbac(kube: KubeAccess, ns: str) -> None:
    config = kube.service_account_kubeconfig(ns, "reader")
    whoami = json.loads(kube.kubectl("auth", "whoami", "-o", "json", kubeconfig=config).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:reader"

    denied = kube.kubectl("get", "secrets", "-n", ns, kubeconfig=config, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr and f"system:serviceaccount:{ns}:reader" in denied.stderr

    # A Role grants exactly what it names: configmaps become readable, secrets stay forbidden.
    kube.kubectl("create", "role", "cm-reader", "-n", ns, "--verb=get,list", "--resource=configmaps")
    kube.kubectl("create", "rolebinding", "cm-reader", "-n", ns, "--role=cm-reader",
                 f"--serviceaccount={ns}:reader")
    kube.wait_for(
        lambda: kube.kubectl("get", "configmaps", "-n", ns, kubeconfig=config, check=False).returncode == 0,
        timeout=30, what="RoleBinding to take effect",
    )
    still_denied = kube.kubectl("get", "secrets", "-n", ns, kubeconfig=config, check=False)
    assert still_denied.returncode != 0 and "Forbidden" in still_denied.stderr
