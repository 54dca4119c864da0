"""The Helm chart with the real `helm` (hack/tools): lint and the values schema, what it renders, and an
install into the test control plane whose ServiceAccount then runs the operator end to end: enough RBAC
to see no Forbidden, and no more (no Secrets, no Pods, nothing cluster-wide it does not manage)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentrun.kube_status import StatusWriter
from agentrun.operator import children
from agentrun.spec.crd import crd_yaml
from testkit.cluster import KubeAccess
from tests.kube.conftest import kube  # noqa: F401  (the session cluster)
from testkit.operator_process import Operator, provide_volumes
from tests.operator.conftest import crds, namespace  # noqa: F401  (fixtures)
from tests.operator.steering import client_for, end_pods, start_run, wait_exists, wait_phase

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agentrun"
APP_VERSION = version("agentrun")


def helm_cmd(helm: Path, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    return subprocess.run([str(helm), *args, *extra], capture_output=True, text=True, timeout=300,
                          env={"HOME": "/tmp/agentrun-helm", "PATH": "/usr/bin:/bin",
                               "HELM_CACHE_HOME": "/tmp/agentrun-helm/cache",
                               "HELM_CONFIG_HOME": "/tmp/agentrun-helm/config",
                               "HELM_DATA_HOME": "/tmp/agentrun-helm/data"})


def cluster_object(cluster: KubeAccess, kind: str, name: str) -> bool:
    return cluster.kubectl("get", kind, name, check=False).returncode == 0


def render(helm: Path, *sets: str, set_json: tuple[str, ...] | list[str] = ()) -> list[dict[str, Any]]:
    args = ["template", "agentrun", str(CHART), "--namespace", "agentrun-system"]
    for value in sets:
        args += ["--set", value]
    for value in set_json:
        args += ["--set-json", value]
    result = helm_cmd(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def rules_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for obj in objects if obj["kind"] in ("ClusterRole", "Role") for rule in obj["rules"]]


def test_the_chart_lints_and_its_schema_refuses_bad_values_naming_them(helm: Path) -> None:
    lint = helm_cmd(helm, "lint", "--strict", str(CHART))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for setting, field in (("operator.replicas=0", "replicas"), ("operator.replica=2", "replica"),
                           ("images.pullPolicy=Sometimes", "pullPolicy"),
                           ("metrics.podMonitor.interval=soon", "interval"),
                           ("watchNamespaces[0]=Team_A", "watchNamespaces")):
        refused = helm_cmd(helm, "template", "x", str(CHART), "--set", setting)
        assert refused.returncode != 0, setting
        assert field in refused.stderr and "values don't meet the specifications of the schema" in refused.stderr, \
            refused.stderr


def test_the_charts_crd_is_the_generated_one(helm: Path) -> None:
    generated = crd_yaml()
    assert (CHART / "crds" / "agenttrainingruns.agentrun.dev.yaml").read_text() == generated
    shown = helm_cmd(helm, "show", "crds", str(CHART))
    assert shown.returncode == 0 and generated in shown.stdout


def test_the_default_install_is_two_peered_non_root_replicas_with_least_privilege(helm: Path) -> None:
    objects = render(helm)
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == APP_VERSION
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == f"ghcr.io/agentrun/operator:{APP_VERSION}"
    assert "--peering=agentrun" in container["args"] and not any("standalone" in a for a in container["args"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AGENTRUN_TRAINER_IMAGE"] == f"ghcr.io/agentrun/trainer:{APP_VERSION}"
    assert env["AGENTRUN_SERVING_IMAGE"] == f"ghcr.io/agentrun/serving:{APP_VERSION}"
    assert env["AGENTRUN_SERVING_CPU_IMAGE"] == f"ghcr.io/agentrun/serving-cpu:{APP_VERSION}"
    assert children.Defaults.from_env(env) == children.Defaults()  # the chart and the operator agree on defaults
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert f"--liveness=http://0.0.0.0:{ports['liveness']}/healthz" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    assert container["resources"]["limits"]["memory"]

    (service,) = by_kind(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (peering,) = by_kind(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "agentrun"
    assert len(by_kind(objects, "ClusterRole")) == 1 and not by_kind(objects, "Role")
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    for rule in rules_of(objects):
        assert not {"secrets", "pods", "nodes", "*"} & set(rule["resources"]), rule
        assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"] and "bind" not in rule["verbs"], rule
    assert not by_kind(objects, "ServiceMonitor") and not by_kind(objects, "PodMonitor")
    assert not by_kind(objects, "ConfigMap")


def test_an_all_digit_tag_from_set_is_the_tag_as_written(helm: Path) -> None:
    # skaffold's default tagger makes short commit hashes, and one of digits only reaches helm as an integer
    objects = render(helm, "images.operator.tag=2464676", "images.trainer.tag=0123", "images.serving.tag=7",
                     "images.servingCpu.tag=8")
    (deployment,) = by_kind(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/agentrun/operator:2464676"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AGENTRUN_TRAINER_IMAGE"] == "ghcr.io/agentrun/trainer:0123"
    assert env["AGENTRUN_SERVING_IMAGE"] == "ghcr.io/agentrun/serving:7"
    assert env["AGENTRUN_SERVING_CPU_IMAGE"] == "ghcr.io/agentrun/serving-cpu:8"


def test_run_pod_defaults_from_the_values_reach_the_operator_as_it_reads_them(helm: Path) -> None:
    pods = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]}
    (deployment,) = by_kind(render(helm, set_json=[f"runPods={json.dumps(pods)}"]), "Deployment")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    defaults = children.Defaults.from_env(env).pods
    assert defaults.tolerations[0].key == "nvidia.com/gpu"
    assert defaults.env[0].value_from is not None and defaults.env[0].value_from.secret_key_ref is not None
    assert defaults.env[0].value_from.secret_key_ref.name == "hf"
    (plain,) = by_kind(render(helm), "Deployment")
    assert "AGENTRUN_RUN_PODS" not in {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_single_namespace_mode_grants_roles_only_in_the_listed_namespaces(helm: Path) -> None:
    objects = render(helm, "watchNamespaces={team-a,team-b}")
    (discovery,) = by_kind(objects, "ClusterRole")  # cluster-wide: listing CRDs and namespaces, nothing else
    assert discovery["rules"] == [
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]
    assert len(by_kind(objects, "ClusterRoleBinding")) == 1
    assert sorted(r["metadata"]["namespace"] for r in by_kind(objects, "Role")) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in by_kind(objects, "RoleBinding")) == ["team-a", "team-b"]
    assert sorted(p["metadata"]["namespace"] for p in by_kind(objects, "KopfPeering")) == ["team-a", "team-b"]
    (deployment,) = by_kind(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args


def test_monitors_and_the_dashboard_match_what_the_pods_expose(helm: Path) -> None:
    objects = render(helm, "metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true",
                     "dashboard.enabled=true", "dashboard.namespace=monitoring")
    (service_monitor,) = by_kind(objects, "ServiceMonitor")
    (service,) = by_kind(objects, "Service")
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]

    (pod_monitor,) = by_kind(objects, "PodMonitor")
    run = yaml.safe_load((ROOT / "examples" / "qwen3-4b-enron.yaml").read_text())
    from agentrun.spec.models import AgentTrainingRun

    owner = children.Owner("r", "ns", "uid")
    pods = [obj["spec"]["template"] for obj in children.workloads(AgentTrainingRun.model_validate(run), owner)
            if obj["kind"] in ("Job", "Deployment")]
    exposed = {port["name"] for pod in pods for c in pod["spec"]["containers"] for port in c.get("ports", [])}
    endpoints = {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]}
    assert endpoints <= exposed and {"metrics", "http"} == endpoints
    selector = pod_monitor["spec"]["selector"]
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert selector["matchLabels"].items() <= labels.items()
        assert labels[children.COMPONENT_LABEL] in selector["matchExpressions"][0]["values"]
    relabel = next(e for e in pod_monitor["spec"]["podMetricsEndpoints"] if e["port"] == "http")["relabelings"][0]
    assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_" + children.RUN_LABEL.replace(".", "_")
                                       .replace("/", "_")] and relabel["targetLabel"] == "run"

    (dashboard,) = by_kind(objects, "ConfigMap")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["agentrun.json"] == (CHART / "dashboards" / "agentrun.json").read_text().rstrip("\n")


def test_installed_chart_runs_the_operator_end_to_end_under_its_own_identity(
    helm: Path, kube: KubeAccess, crds: None, namespace: Callable[[str], str], tmp_path: Path,  # noqa: F811
) -> None:
    release_ns = namespace("agentrun-system")
    release = f"agentrun-{uuid.uuid4().hex[:6]}"  # cluster-scoped names are the release's
    installed = helm_cmd(helm, "install", release, str(CHART), "-n", release_ns, "--set", f"operator.peering={release}",
                         "--wait", "--timeout=180s", kubeconfig=kube.kubeconfig)
    assert installed.returncode == 0, installed.stderr
    assert "kubectl get atr -w" in installed.stdout  # NOTES.txt
    try:
        deployment = kube.get("deployment", release, namespace=release_ns)
        assert deployment["status"].get("readyReplicas") == 2  # kwok runs the pods
        assert cluster_object(kube, "clusterrole", release) and cluster_object(kube, "clusterkopfpeering", release)
        account = f"system:serviceaccount:{release_ns}:{release}"

        def can(*args: str) -> bool:
            return kube.kubectl("auth", "can-i", *args, f"--as={account}", check=False).stdout.strip() == "yes"

        assert can("create", "jobs", "-n", "anywhere") and can("patch", "agenttrainingruns.agentrun.dev/status", "-A")
        for forbidden in (("get", "secrets", "-A"), ("list", "pods", "-A"), ("create", "clusterroles"),
                          ("delete", "nodes"), ("update", "agenttrainingruns.agentrun.dev", "-A"),
                          ("patch", "clusterkopfpeerings.kopf.dev/someone-else")):
            assert not can(*forbidden), forbidden

        provide_volumes(kube, 2, prefix=release)
        identity = kube.service_account_kubeconfig(release_ns, release, create=False)
        under_test = Operator(kube, tmp_path / "operator.log", kubeconfig=identity, args=("--peering", release))
        under_test.start()
        try:
            ns = namespace("chart-runs")
            start_run(kube, ns, "done", training={"steps": 2, "checkpointEvery": 2}, evaluation={"everySteps": 2})
            with client_for(kube.service_account_kubeconfig(ns, "done-workload", create=False)) as client:
                assert StatusWriter(client, ns, "done").progress(step=2, latestCheckpoint="step-000002")
            wait_exists(kube, "job", ns, "done-eval-step-000002")
            end_pods(kube, ns, "done-learner", 0)
            wait_exists(kube, "job", ns, "done-eval-final")
            end_pods(kube, ns, "done-eval-final", 0)
            wait_phase(kube, ns, "done", "Succeeded")

            start_run(kube, ns, "paused")
            kube.kubectl("patch", "atr", "paused", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
            wait_phase(kube, ns, "paused", "Suspended")
            kube.kubectl("patch", "atr", "paused", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
            wait_phase(kube, ns, "paused", "Running")
            kube.kubectl("delete", "atr", "paused", "-n", ns, "--timeout=90s")
            assert f'agentrun_operator_runs{{namespace="{ns}",phase="Succeeded"}} 1.0' in under_test.metrics()
            log = (tmp_path / "operator.log").read_text()
            assert "Forbidden" not in log and " 403" not in log and "forbidden" not in log, under_test.tail()
        finally:
            under_test.stop()
    finally:
        uninstalled = helm_cmd(helm, "uninstall", release, "-n", release_ns, "--wait", kubeconfig=kube.kubeconfig)
        assert uninstalled.returncode == 0, uninstalled.stderr
    assert not cluster_object(kube, "clusterrole", release)


def test_single_namespace_mode_runs_the_operator_with_roles_only(
    helm: Path, kube: KubeAccess, crds: None, namespace: Callable[[str], str], tmp_path: Path,  # noqa: F811
) -> None:
    release_ns, runs_ns = namespace("agentrun-ns"), namespace("team")
    release = f"agentrun-{uuid.uuid4().hex[:6]}"
    installed = helm_cmd(helm, "install", release, str(CHART), "-n", release_ns, "--set", f"watchNamespaces={{{runs_ns}}}",
                         "--set", "operator.replicas=1", "--set", f"operator.peering={release}", "--wait",
                         "--timeout=180s", kubeconfig=kube.kubeconfig)
    assert installed.returncode == 0, installed.stderr
    try:
        account = f"system:serviceaccount:{release_ns}:{release}"

        def can(*args: str) -> bool:
            return kube.kubectl("auth", "can-i", *args, f"--as={account}", check=False).stdout.strip() == "yes"

        assert can("create", "jobs", "-n", runs_ns) and not can("create", "jobs", "-n", release_ns)
        assert not can("list", "agenttrainingruns.agentrun.dev", "-A")
        provide_volumes(kube, 1, prefix=release)
        identity = kube.service_account_kubeconfig(release_ns, release, create=False)
        under_test = Operator(kube, tmp_path / "operator.log", kubeconfig=identity,
                              args=("--peering", release, "--namespace", runs_ns))
        under_test.start()
        try:
            start_run(kube, runs_ns, "scoped")
            log = (tmp_path / "operator.log").read_text()
            assert "Forbidden" not in log and "forbidden" not in log, under_test.tail()
        finally:
            under_test.stop()
    finally:
        assert helm_cmd(helm, "uninstall", release, "-n", release_ns, "--wait", kubeconfig=kube.kubeconfig).returncode == 0
