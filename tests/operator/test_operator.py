"""The operator against a real control plane (tests.kube): real API server validation and RBAC, the real
Job/Deployment controllers and garbage collector, kwok's fake nodes running the pods. Each test has its
own namespace; a test ends a pod's life by annotating it (testkit/kwok-stages.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentrun.kube_status import StatusWriter
from agentrun.operator import children
from agentrun.spec.loading import load_run
from testkit.cluster import KubeAccess

from .conftest import Operator
from .steering import (
    EXAMPLE,
    SMALL,
    TIMEOUT,
    client_for,
    end_pods,
    events,
    exists,
    manifest,
    run_status,
    start_run,
    wait_exists,
    wait_phase,
)

pytestmark = pytest.mark.timeout(600)

def test_the_example_run_gets_every_child_as_built_and_runs(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("example")
    body = manifest("qwen3-4b-enron", ns, full_size=True)
    kube.apply(body)
    run = load_run(EXAMPLE).model_copy(update={"metadata": load_run(EXAMPLE).metadata.model_copy(
        update={"namespace": ns})})
    uid = kube.get("agenttrainingrun", "qwen3-4b-enron", namespace=ns)["metadata"]["uid"]
    owner = children.Owner("qwen3-4b-enron", ns, uid)

    prepare = wait_exists(kube, "job", ns, "qwen3-4b-enron-prepare")
    assert run_status(kube, ns, "qwen3-4b-enron")["phase"] == "Preparing"
    expected_prepare = children.prepare_job(run, owner)
    assert prepare["spec"]["template"]["spec"]["containers"][0]["command"] == \
        expected_prepare["spec"]["template"]["spec"]["containers"][0]["command"]
    assert prepare["metadata"]["ownerReferences"][0]["uid"] == uid
    end_pods(kube, ns, "qwen3-4b-enron-prepare", 0)

    deployment = wait_exists(kube, "deployment", ns, "qwen3-4b-enron-serve")
    built_deployment, _ = children.serving(run, owner)
    live, built = deployment["spec"]["template"]["spec"], built_deployment["spec"]["template"]["spec"]
    for key in ("image", "command", "args", "env", "volumeMounts"):
        assert live["containers"][0][key] == built["containers"][0][key], key
    assert live["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert live["volumes"][0]["persistentVolumeClaim"] == {"claimName": "qwen3-4b-enron-data", "readOnly": True}
    learner = wait_exists(kube, "job", ns, "qwen3-4b-enron-learner")
    built_learner, _ = children.learner(run, owner)
    live_pod, built_pod = learner["spec"]["template"]["spec"], built_learner["spec"]["template"]["spec"]
    assert live_pod["containers"][0]["command"] == built_pod["containers"][0]["command"]
    assert live_pod["containers"][0]["env"] == built_pod["containers"][0]["env"]
    assert live_pod["serviceAccountName"] == "qwen3-4b-enron-workload"
    assert learner["spec"]["completionMode"] == "Indexed"
    for kind, name in (("service", "qwen3-4b-enron-serve"), ("service", "qwen3-4b-enron-learner"),
                       ("pvc", "qwen3-4b-enron-data"), ("configmap", "qwen3-4b-enron-spec"),
                       ("serviceaccount", "qwen3-4b-enron-workload"), ("role", "qwen3-4b-enron-workload"),
                       ("rolebinding", "qwen3-4b-enron-workload")):
        assert exists(kube, kind, ns, name), (kind, name)

    status = wait_phase(kube, ns, "qwen3-4b-enron", "Running")
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Prepared"]["status"] == "True" and by_type["Training"]["status"] == "True"
    assert status["progress"]["totalSteps"] == 200 and status["startTime"]
    table = kube.kubectl("get", "atr", "-n", ns).stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "STEP", "REWARD", "ACCURACY", "AGE"]
    assert "Running" in table.split("\n")[1]
    assert {e["reason"] for e in events(kube, ns, "qwen3-4b-enron")} >= {"Preparing", "Training"}  # one per phase


def test_progress_from_the_runs_service_account_shows_and_it_cannot_touch_another_run(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("rbac")
    start_run(kube, ns, "alpha")
    start_run(kube, ns, "beta")
    identity = kube.service_account_kubeconfig(ns, "alpha-workload", create=False)
    with client_for(identity) as client:
        assert StatusWriter(client, ns, "alpha").progress(step=7, reward=-0.25, latestCheckpoint="step-000007")
        row = kube.kubectl("get", "atr", "alpha", "-n", ns, "--no-headers").stdout.split()
        assert row[1:4] == ["Running", "7", "-0.25"]
        assert not StatusWriter(client, ns, "beta").progress(step=99)  # 403 from the real RBAC
        # the learner's LearnerStalled, as `kubectl describe atr` shows it
        assert StatusWriter(client, ns, "alpha").event("LearnerStalled", "stalled: no step completed for 61 s")
    stalled = [e for e in events(kube, ns, "alpha") if e["reason"] == "LearnerStalled"]
    assert [(e["type"], e["message"]) for e in stalled] == [("Warning", "stalled: no step completed for 61 s")]
    assert run_status(kube, ns, "beta").get("progress", {}).get("step", 0) == 0
    denied = kube.kubectl("get", "secrets", "-n", ns, kubeconfig=identity, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    spec_edit = kube.kubectl("patch", "atr", "alpha", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}',
                             kubeconfig=identity, check=False)
    assert spec_edit.returncode != 0 and "forbidden" in spec_edit.stderr.lower()


def test_evaluations_follow_the_steps_and_success_leads_through_evaluating(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("success")
    start_run(kube, ns, "short", training={"steps": 4, "checkpointEvery": 2}, evaluation={"everySteps": 2, "limit": 50})
    assert not exists(kube, "job", ns, "short-eval-step-000002")
    with client_for(kube.service_account_kubeconfig(ns, "short-workload", create=False)) as client:
        writer = StatusWriter(client, ns, "short")
        assert writer.progress(step=3, latestCheckpoint="step-000003")
        wait_exists(kube, "job", ns, "short-eval-step-000002")
        assert writer.progress(step=4, latestCheckpoint="step-000004")
    evaluation = wait_exists(kube, "job", ns, "short-eval-step-000004")
    assert evaluation["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["--step", "4"]

    end_pods(kube, ns, "short-learner", 0)
    wait_phase(kube, ns, "short", "Evaluating")
    final = wait_exists(kube, "job", ns, "short-eval-final")
    assert final["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "--final"
    end_pods(kube, ns, "short-eval-final", 0)
    status = wait_phase(kube, ns, "short", "Succeeded")
    assert status["completionTime"]
    kube.wait_for(lambda: not exists(kube, "deployment", ns, "short-serve"), timeout=TIMEOUT,
                  what="the server released after success")
    reasons = [e["reason"] for e in events(kube, ns, "short")]
    assert "Evaluating" in reasons and "Succeeded" in reasons


def test_a_failed_learner_fails_the_run_with_a_reason_and_an_event(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("failure")
    start_run(kube, ns, "doomed", learner={"retries": 0, "resources": SMALL})
    end_pods(kube, ns, "doomed-learner", 1)
    status = wait_phase(kube, ns, "doomed", "Failed")
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "LearnerFailed"
    assert "BackoffLimitExceeded" in failed["message"]
    warning = kube.wait_for(lambda: [e for e in events(kube, ns, "doomed") if e["reason"] == "LearnerFailed"],
                            timeout=TIMEOUT, what="a LearnerFailed event")
    assert warning[0]["type"] == "Warning"


def test_suspend_removes_workloads_keeps_data_and_resume_recreates_them(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("suspend")
    start_run(kube, ns, "pausable")
    first_learner = kube.get("job", "pausable-learner", namespace=ns)["metadata"]["uid"]
    kube.kubectl("patch", "atr", "pausable", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_phase(kube, ns, "pausable", "Suspended")
    kube.wait_for(lambda: not exists(kube, "job", ns, "pausable-learner")
                  and not exists(kube, "deployment", ns, "pausable-serve"), timeout=TIMEOUT, what="workloads removed")
    assert exists(kube, "pvc", ns, "pausable-data") and exists(kube, "configmap", ns, "pausable-spec")
    spec_file = yaml.safe_load(kube.get("configmap", "pausable-spec", namespace=ns)["data"]["run.yaml"])
    assert spec_file["spec"]["suspend"] is True

    kube.kubectl("patch", "atr", "pausable", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    learner = wait_exists(kube, "job", ns, "pausable-learner")
    assert learner["metadata"]["uid"] != first_learner
    command = learner["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--resume") + 1] == "latest"
    wait_phase(kube, ns, "pausable", "Running")
    assert not exists(kube, "job", ns, "pausable-prepare")  # prepared once, not again


def test_deleting_the_run_garbage_collects_every_child(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("delete")
    start_run(kube, ns, "ephemeral")
    selector = f"{children.RUN_LABEL}=ephemeral"
    kinds = "jobs,deployments,services,configmaps,persistentvolumeclaims,serviceaccounts,roles,rolebindings"
    assert kube.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout.strip()
    kube.kubectl("delete", "atr", "ephemeral", "-n", ns, "--wait=false")
    kube.wait_for(lambda: not kube.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout.strip(),
                  timeout=120, what="the garbage collector removing every child")


INVALID = [
    ("steps", {"training": {"steps": 0}}, "spec.training.steps"),
    ("rate", {"training": {"learningRate": 0.5}}, "spec.training.learningRate"),
    ("group", {"training": {"groupSize": 1}}, "spec.training.groupSize"),
    ("rank", {"training": {"lora": {"rank": 0}}}, "spec.training.lora.rank"),
    ("source", {"dataset": {"source": "s3"}}, "spec.dataset.source"),
    ("dtype", {"model": {"base": "Qwen/Qwen3-4B", "dtype": "int4"}}, "spec.model.dtype"),
    ("split", {"evaluation": {"finalSplit": "validation"}}, "spec.evaluation.finalSplit"),
    ("temperature", {"rollout": {"temperature": 3}}, "spec.rollout.temperature"),
    ("nodes", {"learner": {"nodes": 0}}, "spec.learner.nodes"),
    ("typo", {"trainnig": {"steps": 3}}, "trainnig"),
    ("maildir", {"dataset": {"source": "maildir"}}, "dataset.maildirPath"),
    ("judge", {"reward": {"judge": {"kind": "llm"}}}, "reward.judge.endpoint"),
    ("zero", {"learner": {"deepspeed": {"zeroStage": 4}}}, "spec.learner.deepspeed.zeroStage"),
    ("evaluations", {"training": {"checkpointEvery": 10}, "evaluation": {"everySteps": 15}}, "checkpointEvery"),
]


@pytest.mark.parametrize(("label", "spec", "field"), INVALID, ids=[case[0] for case in INVALID])
def test_the_api_server_rejects_invalid_runs_naming_the_field(
    kube: KubeAccess, crds: None, label: str, spec: dict[str, Any], field: str
) -> None:
    body = {"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
            "metadata": {"name": f"bad-{label}", "namespace": "default"}, "spec": spec}
    result = kube.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0, f"{label}: accepted"
    assert field in result.stderr, result.stderr


def test_names_that_cannot_name_children_and_base_model_changes_are_rejected(
    kube: KubeAccess, crds: None, namespace: Callable[[str], str]
) -> None:
    long_name = {"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
                 "metadata": {"name": "x" * 60, "namespace": "default"}, "spec": {}}
    result = kube.kubectl("create", "-f", "-", input=json.dumps(long_name), check=False)
    assert result.returncode != 0 and "at most 53 characters" in result.stderr
    ns = namespace("immutable")
    kube.apply(manifest("fixed", ns))
    change = kube.kubectl("patch", "atr", "fixed", "-n", ns, "--type=merge",
                          "-p", '{"spec":{"model":{"base":"Qwen/Qwen3-8B"}}}', check=False)
    assert change.returncode != 0 and "model.base cannot change after creation" in change.stderr


def test_killing_the_operator_mid_reconcile_creates_no_duplicates(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("restart")
    kube.apply(manifest("sturdy", ns))
    wait_exists(kube, "job", ns, "sturdy-prepare")
    operator.kill()
    end_pods(kube, ns, "sturdy-prepare", 0)  # the world moves on while the operator is down
    operator.start()
    wait_phase(kube, ns, "sturdy", "Running")
    operator.kill()
    operator.start()
    wait_phase(kube, ns, "sturdy", "Running")
    selector = f"{children.RUN_LABEL}=sturdy"
    names = kube.kubectl("get", "jobs,deployments,services,pvc", "-n", ns, "-l", selector, "-o", "name").stdout.split()
    assert sorted(names) == sorted([
        "job.batch/sturdy-prepare", "job.batch/sturdy-learner", "deployment.apps/sturdy-serve",
        "service/sturdy-serve", "service/sturdy-learner", "persistentvolumeclaim/sturdy-data"])
    pods = [p for p in kube.get("pods", namespace=ns)["items"] if p["metadata"]["labels"].get("job-name") == "sturdy-learner"]
    assert len(pods) == 1
    assert "agentrun_operator_runs{" in operator.metrics()


def test_operator_metrics_count_runs_by_phase_and_reconciles(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("metrics")
    start_run(kube, ns, "observed")
    text = operator.metrics()
    assert f'agentrun_operator_runs{{namespace="{ns}",phase="Running"}} 1.0' in text
    assert f'agentrun_operator_reconciles_total{{namespace="{ns}",result="ok",run="observed"}}' in text
    created = [line for line in text.splitlines() if line.startswith("agentrun_operator_children_created_total{")
               and f'namespace="{ns}"' in line]
    assert f'agentrun_operator_children_created_total{{kind="Job",namespace="{ns}",run="observed"}} 2.0' in created, \
        (created, kube.kubectl("get", "jobs", "-n", ns, "-o", "wide").stdout, operator.tail(200))


def test_the_last_evaluation_in_a_runs_status_is_exported_by_the_operator(
    kube: KubeAccess, operator: Operator, namespace: Callable[[str], str]
) -> None:
    ns = namespace("evalmetrics")
    start_run(kube, ns, "scored")
    with client_for(kube.service_account_kubeconfig(ns, "scored-workload", create=False)) as client:
        assert StatusWriter(client, ns, "scored").progress(lastEvaluation={
            "step": 20, "split": "validation", "reward": 0.25, "accuracy": 0.4, "sourcesAccuracy": 0.3,
            "turns": 4.5, "latencyP50Seconds": 2.0})
    labels = f'namespace="{ns}",run="scored",split="validation",step="20"'
    kube.wait_for(lambda: f"agentrun_eval_answer_accuracy{{{labels}}} 0.4" in operator.metrics(), timeout=TIMEOUT,
                  what="the operator exporting the run's last evaluation")
    text = operator.metrics()
    for series, value in (("agentrun_eval_reward_mean", 0.25), ("agentrun_eval_sources_accuracy", 0.3),
                          ("agentrun_eval_turns_mean", 4.5), ("agentrun_eval_latency_p50_seconds", 2.0)):
        assert f"{series}{{{labels}}} {value}" in text
    kube.kubectl("delete", "atr", "scored", "-n", ns)

    def evaluation_lines() -> list[str]:
        return [line for line in operator.metrics().splitlines()
                if line.startswith("agentrun_eval_") and f'namespace="{ns}"' in line]

    kube.wait_for(lambda: not evaluation_lines(), timeout=TIMEOUT, what="the deleted run's evaluation series gone")


def test_kubectl_explain_reads_the_spec_descriptions(kube: KubeAccess, crds: None) -> None:
    text = kube.kubectl("explain", "atr.spec.training.learningRate").stdout
    assert "AdamW learning rate" in text


def test_two_replicas_with_peering_only_the_higher_priority_one_reconciles(
    kube: KubeAccess, crds: None, namespace: Callable[[str], str], tmp_path: Path
) -> None:
    kube.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "agentrun-test"}})
    active = Operator(kube, tmp_path / "active.log", args=("--peering", "agentrun-test", "--priority", "100"))
    waiting = Operator(kube, tmp_path / "waiting.log", args=("--peering", "agentrun-test", "--priority", "10"))
    active.start()
    waiting.start()
    try:
        ns = namespace("peering")
        kube.apply(manifest("shared", ns))
        kube.wait_for(lambda: f'namespace="{ns}"' in active.metrics(), timeout=TIMEOUT,
                      what="the active replica reconciling the run")
        assert f'namespace="{ns}"' not in waiting.metrics()
        active.stop()  # a graceful stop withdraws it from the peering: the other one takes over
        kube.wait_for(lambda: f'namespace="{ns}"' in waiting.metrics(), timeout=TIMEOUT,
                      what="the waiting replica taking over")
    finally:
        active.stop()
        waiting.stop()
