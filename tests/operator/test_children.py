"""The children's manifests, built from the example cluster run without a cluster: the fields DESIGN §5
fixes (LoRA flags, resolver, read-only volume, GPUs, rendezvous, secrets by reference, least privilege)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentrun.operator import children
from agentrun.vllm import max_lora_rank
from agentrun.spec import loading

ROOT = Path(__file__).resolve().parents[2]
OWNER = children.Owner(name="qwen3-4b-enron", namespace="agentrun", uid="uid-1")


@pytest.fixture(scope="module")
def run():  # noqa: ANN201
    return loading.load_run(ROOT / "examples" / "qwen3-4b-enron.yaml")


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]


def env(obj: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(obj)["env"]}


def test_every_child_is_owned_by_the_run_and_labelled(run) -> None:  # noqa: ANN001
    objs = [children.pvc(run, OWNER), children.spec_config_map(run, OWNER), *children.workload_rbac(OWNER),
            children.prepare_job(run, OWNER), *children.workloads(run, OWNER),
            children.evaluation_job(run, OWNER, 20), children.evaluation_job(run, OWNER, None)]
    names = [o["metadata"]["name"] for o in objs]  # type: ignore[index]
    assert len({(o["kind"], o["metadata"]["name"]) for o in objs}) == len(objs)  # type: ignore[index]
    assert "qwen3-4b-enron-eval-step-000020" in names and "qwen3-4b-enron-eval-final" in names
    for obj in objs:
        meta = obj["metadata"]  # type: ignore[index]
        assert meta["namespace"] == "agentrun"
        assert meta["ownerReferences"] == [{"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
                                            "name": "qwen3-4b-enron", "uid": "uid-1", "controller": True,
                                            "blockOwnerDeletion": True}]
        assert meta["labels"][children.RUN_LABEL] == "qwen3-4b-enron"


def test_the_vllm_server_serves_lora_adapters_from_the_runs_checkpoints(run) -> None:  # noqa: ANN001
    deployment, service = children.serving(run, OWNER)
    vllm = container(deployment)
    args = vllm["args"]
    assert args[:2] == ["serve", "Qwen/Qwen3-4B"] and vllm["image"] == children.Defaults().serving
    for flag, value in (("--max-loras", "4"), ("--max-lora-rank", "16"), ("--tool-call-parser", "hermes"),
                        ("--max-model-len", "16384"), ("--dtype", "bfloat16")):
        assert args[args.index(flag) + 1] == value
    assert "--enable-lora" in args and "--enable-auto-tool-choice" in args
    assert "--no-enable-chunked-prefill" not in args  # the CPU build's workaround only
    assert env(deployment)["VLLM_PLUGINS"] == "lora_filesystem_resolver"
    assert env(deployment)["VLLM_LORA_RESOLVER_CACHE_DIR"] == "/data/runs/qwen3-4b-enron/checkpoints"
    assert env(deployment)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    data = next(m for m in vllm["volumeMounts"] if m["name"] == "data")
    assert data == {"name": "data", "mountPath": "/data", "readOnly": True}
    assert vllm["resources"] == {"requests": {"memory": "64Gi", "nvidia.com/gpu": 1},
                                 "limits": {"memory": "64Gi", "nvidia.com/gpu": 1}}
    assert vllm["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8000
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.85" and args[args.index("--port") + 1] == "8000"
    extra = run.model_copy(update={"spec": run.spec.model_copy(update={
        "serving": run.spec.serving.model_copy(update={"extra_args": ["--max-loras", "8"]})})})
    assert container(children.serving(extra, OWNER)[0])["args"][-2:] == ["--max-loras", "8"]  # last: they override


def test_the_default_manifest_serves_the_tiny_model_the_prepare_job_built_on_a_cpu_build_of_vllm() -> None:
    quickstart = loading.load_run(ROOT / "examples" / "quickstart.yaml")
    cpu = quickstart.spec.serving.resources.model_copy(update={"gpus": 0, "memory": "4Gi"})
    tiny = quickstart.model_copy(update={"spec": quickstart.spec.model_copy(update={
        "model": quickstart.spec.model.model_copy(update={"max_model_len": 16384}),
        "serving": quickstart.spec.serving.model_copy(update={"resources": cpu})})})
    owner = children.Owner(name="quickstart", namespace="team", uid="uid-2")
    deployment, _ = children.serving(tiny, owner, children.Defaults(serving_cpu="registry.local/serving-cpu:1"))
    vllm = container(deployment)
    args = vllm["args"]
    # the path the prepare Job links (agentrun.workloads.prepare), which the learner names its base by too
    assert args[:2] == ["serve", "/data/runs/quickstart/base"]
    assert args[args.index("--max-model-len") + 1] == "4096"  # the tiny model's positions, not the spec's 16384
    assert "--gpu-memory-utilization" not in args
    # whole prompts per scheduling step: a split seeded prompt kills vLLM's CPU engine (tests/serving)
    assert "--no-enable-chunked-prefill" in args and args[args.index("--max-num-batched-tokens") + 1] == "4096"
    assert vllm["image"] == "registry.local/serving-cpu:1"
    assert vllm["resources"] == {"requests": {"memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    assert env(deployment)["VLLM_CPU_KVCACHE_SPACE"] == "4"  # else vLLM reserves most of the node's memory
    pods = tiny.spec.pods.model_validate({"serving": {"env": [{"name": "VLLM_CPU_KVCACHE_SPACE", "value": "1"}]}})
    small = tiny.model_copy(update={"spec": tiny.spec.model_copy(update={"pods": pods})})
    (kv,) = [e for e in container(children.serving(small, owner)[0])["env"] if e["name"] == "VLLM_CPU_KVCACHE_SPACE"]
    assert kv["value"] == "1"  # the spec's own value, once


def test_the_learner_is_an_indexed_job_that_rendezvouses_at_pod_zero_and_resumes(run) -> None:  # noqa: ANN001
    two_nodes = run.model_copy(update={"spec": run.spec.model_copy(update={
        "learner": run.spec.learner.model_copy(update={"nodes": 2})})})
    job, service = children.learner(two_nodes, OWNER)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] == "qwen3-4b-enron-learner"
    assert service["spec"]["clusterIP"] == "None"
    command = container(job)["command"]
    assert command[0] == "torchrun" and "--nnodes=2" in command and "--node-rank=$(JOB_COMPLETION_INDEX)" in command
    assert "--master-addr=qwen3-4b-enron-learner-0.qwen3-4b-enron-learner.agentrun.svc" in command
    assert command[command.index("--resume") + 1] == "latest"
    assert env(job)["AGENTRUN_SERVER_URL"] == "http://qwen3-4b-enron-serve.agentrun.svc:8000/v1"
    assert env(job)["AGENTRUN_RUN_FILE"] == "/etc/agentrun/run.yaml"
    assert container(job)["resources"]["limits"] == {"memory": "128Gi", "nvidia.com/gpu": 1}
    assert pod["serviceAccountName"] == "qwen3-4b-enron-workload"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_learner_is_live_while_it_completes_steps_and_the_probe_can_be_turned_off(run) -> None:  # noqa: ANN001
    job, _ = children.learner(run, OWNER)
    learner = container(job)
    assert learner["command"][learner["command"].index("--liveness-port") + 1] == str(children.LIVENESS_PORT)
    assert {"name": "liveness", "containerPort": children.LIVENESS_PORT} in learner["ports"]
    assert learner["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    off = run.model_copy(update={"spec": run.spec.model_copy(update={
        "learner": run.spec.learner.model_copy(update={"stall_timeout_seconds": 0})})})
    unprobed = container(children.learner(off, OWNER)[0])
    assert "livenessProbe" not in unprobed and "startupProbe" not in unprobed
    assert "--liveness-port" not in unprobed["command"]


@pytest.mark.parametrize(("stall", "period"), [(3600, 30), (120, 20), (40, 6), (10, 5)])
def test_a_stalled_learner_is_replaced_within_a_third_more_than_its_stall_timeout(stall: int, period: int) -> None:
    probes = children.learner_probes(stall)
    liveness, startup = probes["livenessProbe"], probes["startupProbe"]
    assert (liveness["periodSeconds"], liveness["failureThreshold"]) == (period, 2)
    assert liveness["periodSeconds"] * liveness["failureThreshold"] <= max(stall / 3, 10)
    # the liveness probe starts once /healthz answers: a learner still importing torch is not killed
    assert startup["httpGet"] == liveness["httpGet"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == children.LEARNER_START_SECONDS


def test_the_judge_key_comes_from_the_secret_by_reference(run) -> None:  # noqa: ANN001
    job, _ = children.learner(run, OWNER)
    assert env(job)["AGENTRUN_JUDGE_API_KEY"] == {"secretKeyRef": {"name": "judge-key", "key": "api-key"}}


def test_workload_rbac_touches_only_this_runs_status(run) -> None:  # noqa: ANN001
    _, role, binding = children.workload_rbac(OWNER)
    assert role["rules"] == [
        {"apiGroups": ["agentrun.dev"], "resources": ["agenttrainingruns"], "resourceNames": ["qwen3-4b-enron"],
         "verbs": ["get"]},
        {"apiGroups": ["agentrun.dev"], "resources": ["agenttrainingruns/status"],
         "resourceNames": ["qwen3-4b-enron"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "qwen3-4b-enron-workload",
                                    "namespace": "agentrun"}]


def test_an_existing_claim_replaces_the_pvc_and_a_queue_labels_the_jobs(run) -> None:  # noqa: ANN001
    spec = run.spec.model_copy(update={"queue_name": "gpu-queue", "storage": run.spec.storage.model_copy(update={
        "pvc": run.spec.storage.pvc.model_copy(update={"existing_claim": "shared-data"})})})
    custom = run.model_copy(update={"spec": spec})
    assert children.pvc(custom, OWNER) is None
    job = children.prepare_job(custom, OWNER)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    volume = job["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "shared-data"


@pytest.mark.parametrize(("rank", "allowed"), [(1, 8), (8, 8), (12, 16), (64, 64), (300, 320)])
def test_the_servers_max_lora_rank_is_the_smallest_vllm_accepts(rank: int, allowed: int) -> None:
    assert max_lora_rank(rank) == allowed


def test_pods_get_the_operators_images_unless_the_spec_names_one(run) -> None:  # noqa: ANN001
    images = children.Defaults.from_env({"AGENTRUN_TRAINER_IMAGE": "registry.local/trainer:1",
                                       "AGENTRUN_SERVING_IMAGE": "registry.local/serving:1"})
    assert images == children.Defaults(trainer="registry.local/trainer:1", serving="registry.local/serving:1")
    assert children.Defaults.from_env({"AGENTRUN_SERVING_CPU_IMAGE": "registry.local/serving-cpu:1"}).serving_cpu \
        == "registry.local/serving-cpu:1"
    assert children.Defaults.from_env({}) == children.Defaults()
    assert children.Defaults().trainer.endswith(f":{children.VERSION}")
    learner_job, _ = children.learner(run, OWNER, images)
    assert container(learner_job)["image"] == "registry.local/trainer:1"
    assert container(children.prepare_job(run, OWNER, images))["image"] == "registry.local/trainer:1"
    assert container(children.evaluation_job(run, OWNER, None, images))["image"] == "registry.local/trainer:1"
    assert container(children.serving(run, OWNER, images)[0])["image"] == "registry.local/serving:1"
    named = run.model_copy(update={"spec": run.spec.model_copy(update={
        "serving": run.spec.serving.model_copy(update={"image": "vllm/vllm-openai:v0.11.0"})})})
    assert container(children.serving(named, OWNER, images)[0])["image"] == "vllm/vllm-openai:v0.11.0"


DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("run_name", ["a" * 53, "0", "9-" + "x" * 51, "qwen3-4b-enron"])
def test_child_names_are_dns_1035_labels_with_room_for_a_pod_index_for_every_run_name_the_crd_accepts(
    run_name: str,
) -> None:
    names = children.Names(run_name)
    every = [names.pvc, names.spec, names.workload, names.prepare, names.serve, names.learner,
             names.eval(None), names.eval(20), names.eval(999_999)]
    for name in every:
        assert DNS_1035.match(name) and len(name) <= children.MAX_CHILD_NAME, name
    assert len(set(every)) == len(every)
    # a cut name keeps a hash of the whole run name: two long runs differing at the end stay apart
    assert children.Names("a" * 52 + "b").eval(20) != children.Names("a" * 53).eval(20)


def test_evaluation_jobs_carry_their_step_so_the_operator_never_parses_names(run) -> None:  # noqa: ANN001
    long = children.Owner(name="a" * 53, namespace="agentrun", uid="uid-2")
    assert children.evaluation_job(run, long, 20)["metadata"]["labels"][children.STEP_LABEL] == "20"
    assert children.evaluation_job(run, long, None)["metadata"]["labels"][children.STEP_LABEL] == "final"


def test_every_pod_meets_pod_security_restricted_and_jobs_survive_disruptions(run) -> None:  # noqa: ANN001
    jobs = [children.prepare_job(run, OWNER), children.evaluation_job(run, OWNER, 20),
            *[o for o in children.workloads(run, OWNER) if o["kind"] == "Job"]]
    (deployment,) = [o for o in children.workloads(run, OWNER) if o["kind"] == "Deployment"]
    for obj in [*jobs, deployment]:
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for item in pod["containers"]:
            assert item["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    for job in jobs:
        assert job["spec"]["podFailurePolicy"]["rules"] == [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    (learner,) = [o for o in children.workloads(run, OWNER) if o["kind"] == "Job"]
    assert learner["spec"]["backoffLimit"] == run.spec.learner.retries == 3
