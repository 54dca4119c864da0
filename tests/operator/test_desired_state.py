"""The operator keeps every child as the run specifies it, on the real control plane: spec edits reach the
Deployment, children deleted or edited by hand come back, pods pass Pod Security `restricted`, every name
the CRD accepts gives valid children, a lost learner pod is replaced, and a deleted run's series go."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from agentrun.kube_status import StatusWriter
from agentrun.operator import children
from testkit.cluster import KubeAccess

from .conftest import Operator
from .steering import SMALL, TIMEOUT, client_for, end_pods, exists, run_status, start_run, wait_exists, wait_phase

pytestmark = pytest.mark.timeout(600)
REPAIR = 30  # seconds a repair may take: a watch event, then the run's next tick (0.5 s in these tests)


def condition(kube: KubeAccess, ns: str, run: str, kind: str) -> dict[str, Any]:
    return next((c for c in run_status(kube, ns, run).get("conditions", []) if c["type"] == kind), {})


def uid(kube: KubeAccess, kind: str, ns: str, name: str) -> str | None:
    found = kube.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(found.stdout)["metadata"]["uid"] if found.returncode == 0 else None


def serve_container(kube: KubeAccess, ns: str, run: str) -> dict[str, Any]:
    return kube.get("deployment", f"{run}-serve", namespace=ns)["spec"]["template"]["spec"]["containers"][0]


def test_serving_edits_reach_the_deployment_and_serving_ready_follows_the_server(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("edits")
    # a server no node can hold: its pod stays Pending, so the run waits with ServingReady=False
    start_run(kube, ns, "edited", serving={"resources": {"gpus": 1, "memory": "100Ti"}})
    waiting = kube.wait_for(lambda: (c := condition(kube, ns, "edited", "ServingReady")).get("reason") and c,
                            timeout=TIMEOUT, what="a ServingReady condition")
    assert (waiting["status"], waiting["reason"]) == ("False", "ServerStarting")

    patch = {"spec": {"serving": {"replicas": 2, "resources": SMALL, "extraArgs": ["--enforce-eager"],
                                  "image": "registry.example/vllm:test"}}}
    kube.kubectl("patch", "atr", "edited", "-n", ns, "--type=merge", "-p", json.dumps(patch))

    def followed() -> bool:
        deployment = kube.get("deployment", "edited-serve", namespace=ns)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return (deployment["spec"]["replicas"] == 2 and container["args"][-1] == "--enforce-eager"
                and container["image"] == "registry.example/vllm:test"
                and container["resources"]["limits"]["memory"] == "1Gi")

    kube.wait_for(followed, timeout=REPAIR, what="the Deployment following the spec's serving edits")
    ready = kube.wait_for(lambda: (c := condition(kube, ns, "edited", "ServingReady"))["status"] == "True" and c,
                          timeout=TIMEOUT, what="ServingReady=True once a server pod is available")
    assert ready["reason"] == "ServerAvailable"


def test_children_deleted_or_edited_by_hand_are_restored(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("repair")
    start_run(kube, ns, "kept")
    for kind, name in (("deployment", "kept-serve"), ("service", "kept-serve"), ("role", "kept-workload"),
                       ("configmap", "kept-spec"), ("rolebinding", "kept-workload")):
        before = uid(kube, kind, ns, name)
        kube.kubectl("delete", kind, name, "-n", ns, "--wait=true")
        kube.wait_for(lambda kind=kind, name=name, before=before: uid(kube, kind, ns, name) not in (None, before),
                      timeout=REPAIR, what=f"{kind} {name} recreated")

    kube.kubectl("scale", "deployment", "kept-serve", "-n", ns, "--replicas=5")
    kube.wait_for(lambda: kube.get("deployment", "kept-serve", namespace=ns)["spec"]["replicas"] == 1,
                  timeout=REPAIR, what="the Deployment's replicas put back")
    kube.kubectl("patch", "configmap", "kept-spec", "-n", ns, "--type=merge", "-p", '{"data":{"run.yaml":"x: 1"}}')
    kube.wait_for(lambda: "apiVersion: agentrun.dev" in kube.get("configmap", "kept-spec", namespace=ns)["data"]["run.yaml"],
                  timeout=REPAIR, what="the spec ConfigMap put back")
    shown = kube.kubectl("get", "deployment", "kept-serve", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    managers = {m["manager"] for m in json.loads(shown)["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert managers == {"agentrun-operator"}
    assert run_status(kube, ns, "kept")["phase"] == "Running"


def test_a_lost_learner_pod_is_replaced_and_only_exhausted_retries_fail_the_run(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("retries")
    start_run(kube, ns, "resilient", learner={"retries": 1, "resources": SMALL})

    def learner_pods(phase: str = "Running") -> list[str]:
        return [p["metadata"]["name"] for p in kube.get("pods", namespace=ns)["items"]
                if p["metadata"].get("labels", {}).get("job-name") == "resilient-learner"
                and p.get("status", {}).get("phase") == phase and not p["metadata"].get("deletionTimestamp")]

    (first,) = kube.wait_for(learner_pods, timeout=TIMEOUT, what="the learner's pod")
    kube.kubectl("delete", "pod", first, "-n", ns, "--wait=false")
    kube.wait_for(lambda: [p for p in learner_pods() if p != first], timeout=TIMEOUT, what="a replacement learner pod")
    assert run_status(kube, ns, "resilient")["phase"] == "Running"
    command = kube.get("job", "resilient-learner", namespace=ns)["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--resume") + 1] == "latest"

    def failed_or_end_a_pod() -> bool:
        if run_status(kube, ns, "resilient")["phase"] == "Failed":
            return True
        if learner_pods():
            end_pods(kube, ns, "resilient-learner", 1)
        return False

    kube.wait_for(failed_or_end_a_pod, timeout=TIMEOUT, what="the run failing once the retries are spent")
    failed = condition(kube, ns, "resilient", "Failed")
    assert failed["reason"] == "LearnerFailed" and "BackoffLimitExceeded" in failed["message"]


def test_every_pod_of_a_run_is_admitted_in_a_restricted_namespace(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("restricted")
    kube.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    start_run(kube, ns, "strict", training={"steps": 4, "checkpointEvery": 2}, evaluation={"everySteps": 2, "limit": 50})
    with client_for(kube.service_account_kubeconfig(ns, "strict-workload", create=False)) as client:
        assert StatusWriter(client, ns, "strict").progress(step=2, latestCheckpoint="step-000002")

    def components() -> set[str]:
        return {p["metadata"]["labels"].get(children.COMPONENT_LABEL, "") for p in kube.get("pods", namespace=ns)["items"]}

    # the prepare pod ran (start_run ended it); the server's, the learner's and an evaluation's exist
    kube.wait_for(lambda: components() >= {"prepare", "serve", "learner", "eval"}, timeout=TIMEOUT,
                  what="pods of every component admitted")
    refused = [e for e in kube.get("events", namespace=ns)["items"] if "violates PodSecurity" in e.get("message", "")]
    assert not refused, refused[0]["message"]


@pytest.mark.parametrize("run_name", ["r" * 53, "0-odd"])
def test_the_longest_and_oddest_names_the_crd_accepts_give_valid_children(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str], run_name: str
) -> None:
    ns = namespace("names")
    start_run(kube, ns, run_name, training={"steps": 4, "checkpointEvery": 2}, evaluation={"everySteps": 2, "limit": 50})
    names = children.Names(run_name)
    with client_for(kube.service_account_kubeconfig(ns, names.workload, create=False)) as client:
        assert StatusWriter(client, ns, run_name).progress(step=4, latestCheckpoint="step-000004")
    for step in (2, 4):
        wait_exists(kube, "job", ns, names.eval(step))
    end_pods(kube, ns, names.learner, 0)
    wait_exists(kube, "job", ns, names.eval(None))
    assert exists(kube, "service", ns, names.serve) and exists(kube, "service", ns, names.learner)
    assert run_status(kube, ns, run_name)["phase"] == "Evaluating"


def test_deleting_a_run_removes_its_operator_series(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("forget")
    start_run(kube, ns, "gone")
    assert f'namespace="{ns}"' in operator.metrics()
    kube.kubectl("delete", "atr", "gone", "-n", ns)
    kube.wait_for(lambda: f'namespace="{ns}"' not in operator.metrics(), timeout=TIMEOUT,
                  what="every series of the deleted run gone")


def run_pods(kube: KubeAccess, ns: str) -> dict[str, dict[str, Any]]:
    """component -> one of its pods (kwok runs them all)."""
    return {p["metadata"]["labels"].get(children.COMPONENT_LABEL, ""): p for p in kube.get("pods", namespace=ns)["items"]}


def test_spec_pods_places_every_pod_and_gives_it_env_from_a_secret(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("placed")
    kube.kubectl("create", "secret", "generic", "hf", "-n", ns, "--from-literal=token=hf_secret")
    pods = {"all": {"nodeSelector": {"kubernetes.io/hostname": "kwok-node-1"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "imagePullSecrets": ["registry"],
                    "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]},
            "learner": {"env": [{"name": "NCCL_DEBUG", "value": "INFO"}]}}
    start_run(kube, ns, "placed", pods=pods)
    found = kube.wait_for(lambda: (p := run_pods(kube, ns)).keys() >= {"prepare", "serve", "learner"} and p,
                          timeout=TIMEOUT, what="the run's pods")
    for component in ("prepare", "serve", "learner"):
        spec = found[component]["spec"]
        assert spec["nodeName"] == "kwok-node-1", component
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["imagePullSecrets"] == [{"name": "registry"}]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
        assert ("NCCL_DEBUG" in env) == (component == "learner")
    assert "hf_secret" not in json.dumps(kube.get("atr", "placed", namespace=ns))  # by reference only


def test_a_read_write_once_claim_puts_every_pod_of_the_run_on_one_node(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("rwo")
    start_run(kube, ns, "single", storage={"pvc": {"size": "10Gi", "accessMode": "ReadWriteOnce"}},
              training={"steps": 4, "checkpointEvery": 2}, evaluation={"everySteps": 2, "limit": 50})
    assert kube.get("pvc", "single-data", namespace=ns)["spec"]["accessModes"] == ["ReadWriteOnce"]
    with client_for(kube.service_account_kubeconfig(ns, "single-workload", create=False)) as client:
        assert StatusWriter(client, ns, "single").progress(step=2, latestCheckpoint="step-000002")
    found = kube.wait_for(lambda: (p := run_pods(kube, ns)).keys() >= {"prepare", "serve", "learner", "eval"} and p,
                          timeout=TIMEOUT, what="pods of every component")
    # the pods that mount the claim at the same time (the prepare pod ended before they started)
    together = {c: p["spec"].get("nodeName") for c, p in found.items() if c in ("serve", "learner", "eval")}
    assert len(set(together.values())) == 1, together
    for component, pod in found.items():  # what holds them together, not luck on two nodes
        (term,) = pod["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term == {"labelSelector": {"matchLabels": {children.RUN_LABEL: "single"}},
                        "topologyKey": "kubernetes.io/hostname"}, component
