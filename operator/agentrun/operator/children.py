"""The children of an AgentTrainingRun (DESIGN §5) as plain manifest dicts: spec in, dicts out, no API
calls, so every field is testable without a cluster. `apply` applies, creates and deletes them.

    <run>-data            PVC with the storage layout (unless spec.storage.pvc.existingClaim)
    <run>-spec            ConfigMap: the run's manifest, read by every workload pod
    <run>-workload        ServiceAccount + Role + RoleBinding: patch this run's status, nothing else
    <run>-prepare         Job: build the dataset, cache the base model on the PVC
    <run>-serve           vLLM Deployment + Service (LoRA resolver on the run's checkpoints)
    <run>-learner         Indexed Job (one pod per node) + headless Service for rendezvous
    <run>-eval-step-N     Job per evaluated checkpoint; <run>-eval-final on the final split
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from agentrun import storage, vllm
from agentrun.spec.crd import GROUP, PLURAL
from agentrun.spec.models import API_VERSION, KIND, AgentTrainingRun, ResourcesSpec
from agentrun.spec.pods import PodOverrides

DATA_MOUNT = "/data"
SPEC_MOUNT = "/etc/agentrun"
SPEC_FILE = f"{SPEC_MOUNT}/run.yaml"
SERVE_PORT = 8000
METRICS_PORT = 9400
LIVENESS_PORT = 9401  # the learner's progress-aware /healthz
RENDEZVOUS_PORT = 29500
WORKLOAD_USER = 1000  # the trainer image's non-root user
SERVING_USER = 1000  # the serving image's non-root user
VERSION = version("agentrun")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RUN_LABEL = f"{GROUP}/run"
STEP_LABEL = f"{GROUP}/step"  # an evaluation Job's checkpoint step, or "final"
COMPONENT_LABEL = "app.kubernetes.io/component"
# The `spec.pods` section of each component's pods.
POD_SECTIONS = {"prepare": "prepare", "learner": "learner", "eval": "evaluation", "serve": "serving"}


@dataclass(frozen=True)
class Defaults:
    """What a run's pods get where its spec says nothing: the images, and placement and environment under
    `spec.pods`. The operator reads them from its environment, which the Helm chart fills from `images.*`
    and `runPods` in its values."""

    trainer: str = f"ghcr.io/agentrun/trainer:{VERSION}"
    serving: str = f"ghcr.io/agentrun/serving:{VERSION}"
    serving_cpu: str = f"ghcr.io/agentrun/serving-cpu:{VERSION}"  # for runs whose server asks for no GPU
    pods: PodOverrides = field(default_factory=PodOverrides)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Defaults:
        """Raises pydantic's ValidationError, naming the field, for an AGENTRUN_RUN_PODS the spec would refuse."""
        default = cls()
        pods = env.get("AGENTRUN_RUN_PODS")
        return cls(trainer=env.get("AGENTRUN_TRAINER_IMAGE") or default.trainer,
                   serving=env.get("AGENTRUN_SERVING_IMAGE") or default.serving,
                   serving_cpu=env.get("AGENTRUN_SERVING_CPU_IMAGE") or default.serving_cpu,
                   pods=PodOverrides.model_validate_json(pods) if pods else PodOverrides())


@dataclass(frozen=True)
class Owner:
    """The run the children belong to (what ownerReferences and names need)."""

    name: str
    namespace: str
    uid: str


# Every child name is a DNS-1035 label (a Service's name must be one) with room for the "-<index>" an
# Indexed Job's pod hostname appends: the 53-character run names the CRD accepts would otherwise give
# 70-character evaluation Jobs.
MAX_CHILD_NAME = 57


def child_name(run: str, suffix: str) -> str:
    """`<run>-<suffix>`; a run name that does not start with a letter gets "run-" in front, and one too long
    is cut and gets 8 hex digits of its hash, so distinct runs never share a child name."""
    base = run if run[0].isalpha() else f"run-{run}"
    name = f"{base}-{suffix}"
    if len(name) <= MAX_CHILD_NAME:
        return name
    digest = hashlib.sha256(run.encode()).hexdigest()[:8]
    return f"{base[: MAX_CHILD_NAME - len(suffix) - len(digest) - 2].rstrip('-')}-{digest}-{suffix}"


@dataclass(frozen=True)
class Names:
    run: str

    @property
    def pvc(self) -> str:
        return child_name(self.run, "data")

    @property
    def spec(self) -> str:
        return child_name(self.run, "spec")

    @property
    def workload(self) -> str:
        return child_name(self.run, "workload")

    @property
    def prepare(self) -> str:
        return child_name(self.run, "prepare")

    @property
    def serve(self) -> str:
        return child_name(self.run, "serve")

    @property
    def learner(self) -> str:
        return child_name(self.run, "learner")

    def eval(self, step: int | None) -> str:
        """`None` names the final evaluation."""
        return child_name(self.run, "eval-final" if step is None else f"eval-{storage.checkpoint_name(step)}")


def claim_name(run: AgentTrainingRun) -> str:
    return run.spec.storage.pvc.existing_claim or Names(run.metadata.name).pvc


def labels(owner: Owner, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "agentrun", "app.kubernetes.io/instance": owner.name,
            "app.kubernetes.io/managed-by": "agentrun-operator", COMPONENT_LABEL: component, RUN_LABEL: owner.name}


def metadata(owner: Owner, name: str, component: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**labels(owner, component), **(extra_labels or {})},
        "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": owner.name, "uid": owner.uid,
                             "controller": True, "blockOwnerDeletion": True}],
    }


def resources(spec: ResourcesSpec) -> dict[str, Any]:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if spec.cpu:
        requests["cpu"] = spec.cpu
    if spec.memory:
        requests["memory"] = limits["memory"] = spec.memory
    if spec.gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = spec.gpus
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _volumes(run: AgentTrainingRun, read_only: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts): the PVC at /data and the run's manifest at /etc/agentrun."""
    names = Names(run.metadata.name)
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": claim_name(run), "readOnly": read_only}},
        {"name": "spec", "configMap": {"name": names.spec}},
    ]
    mounts = [{"name": "data", "mountPath": DATA_MOUNT, "readOnly": read_only},
              {"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True}]
    return volumes, mounts


# What Pod Security's `restricted` level asks of every container and pod.
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_security(user: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": user, "fsGroup": user, "seccompProfile": {"type": "RuntimeDefault"}}


def _common_env(run: AgentTrainingRun) -> list[dict[str, Any]]:
    env = [
        {"name": "AGENTRUN_RUN_FILE", "value": SPEC_FILE},
        {"name": "AGENTRUN_STORAGE", "value": DATA_MOUNT},
        {"name": "HF_HUB_CACHE", "value": str(storage.Layout(Path(DATA_MOUNT)).hub_cache())},
        {"name": "AGENTRUN_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
    ]
    secret = run.spec.reward.judge.api_key_secret
    if secret is not None:  # the key itself never appears in a spec or a manifest
        env.append({"name": run.spec.reward.judge.api_key_env,
                    "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}})
    return env


def placed(pod: dict[str, Any], run: AgentTrainingRun, owner: Owner, overrides: PodOverrides) -> dict[str, Any]:
    """`pod` (a pod template) with the spec's placement and extra environment; on a ReadWriteOnce claim,
    also required affinity to the run's other pods, which all mount it."""
    spec = pod["spec"]
    if overrides.node_selector:
        spec["nodeSelector"] = dict(overrides.node_selector)
    if overrides.tolerations:
        spec["tolerations"] = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in overrides.tolerations]
    affinity = copy.deepcopy(overrides.affinity) or {}
    if run.spec.storage.pvc.access_mode == "ReadWriteOnce":
        term = {"labelSelector": {"matchLabels": {RUN_LABEL: owner.name}}, "topologyKey": "kubernetes.io/hostname"}
        affinity.setdefault("podAffinity", {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append(term)
    if affinity:
        spec["affinity"] = affinity
    if overrides.priority_class_name:
        spec["priorityClassName"] = overrides.priority_class_name
    if overrides.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in overrides.image_pull_secrets]
    for container in spec["containers"]:
        extra = [v.model_dump(mode="json", by_alias=True, exclude_none=True) for v in overrides.env]
        named = {v["name"] for v in extra}  # the spec's value wins over the operator's default of a variable
        container["env"] = [*(v for v in container.get("env", []) if v["name"] not in named), *extra]
        if overrides.env_from:
            container["envFrom"] = [e.model_dump(mode="json", by_alias=True, exclude_none=True)
                                    for e in overrides.env_from]
    return pod


def _workload_pod(run: AgentTrainingRun, owner: Owner, defaults: Defaults, component: str, command: list[str],
                  resources_spec: ResourcesSpec | None, extra_env: list[dict[str, Any]] | None = None,
                  read_only: bool = False) -> dict[str, Any]:
    volumes, mounts = _volumes(run, read_only)
    container: dict[str, Any] = {
        "name": component,
        "image": run.spec.learner.image or defaults.trainer,
        "command": command,
        "env": [*_common_env(run), *(extra_env or [])],
        "volumeMounts": mounts,
        "securityContext": CONTAINER_SECURITY,
    }
    if resources_spec is not None:
        container["resources"] = resources(resources_spec)
    pod = {
        "metadata": {"labels": labels(owner, component)},
        "spec": {
            "serviceAccountName": Names(owner.name).workload,
            "restartPolicy": "Never",
            "securityContext": pod_security(WORKLOAD_USER),
            "containers": [container],
            "volumes": volumes,
        },
    }
    return placed(pod, run, owner, defaults.pods.under(run.spec.pods.of(POD_SECTIONS[component])))


def _job(run: AgentTrainingRun, owner: Owner, name: str, component: str, pod: dict[str, Any],
         retries: int, extra_labels: dict[str, str] | None = None, **job_spec: Any) -> dict[str, Any]:
    """A Job whose pods are replaced `retries` times on failure; a pod evicted, preempted or lost with
    its node (condition DisruptionTarget) is replaced without counting, since every workload resumes."""
    queue = {QUEUE_LABEL: run.spec.queue_name} if run.spec.queue_name else {}
    failure_policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(owner, name, component, {**queue, **(extra_labels or {})}),
        "spec": {"backoffLimit": retries, "podFailurePolicy": failure_policy, "template": pod, **job_spec},
    }


def pvc(run: AgentTrainingRun, owner: Owner) -> dict[str, Any] | None:
    """The claim the operator creates, or None when the spec names an existing one."""
    spec = run.spec.storage.pvc
    if spec.existing_claim:
        return None
    claim: dict[str, Any] = {"accessModes": [spec.access_mode], "resources": {"requests": {"storage": spec.size}}}
    if spec.storage_class_name:
        claim["storageClassName"] = spec.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(owner, claim_name(run), "data"),
            "spec": claim}


def spec_config_map(run: AgentTrainingRun, owner: Owner) -> dict[str, Any]:
    manifest = run.model_dump(mode="json", by_alias=True, exclude={"metadata"})
    manifest["metadata"] = {"name": owner.name, "namespace": owner.namespace}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(owner, Names(owner.name).spec, "spec"),
            "data": {"run.yaml": yaml.safe_dump(manifest, sort_keys=False)}}


def workload_rbac(owner: Owner) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding: the run's pods may read their run and patch its status,
    and nothing else (resourceNames pins the run)."""
    name = Names(owner.name).workload
    role_rules = [
        {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": [owner.name], "verbs": ["get"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "resourceNames": [owner.name],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},  # the learner's LearnerStalled
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(owner, name, "rbac")},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(owner, name, "rbac"),
         "rules": role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": metadata(owner, name, "rbac"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}]},
    ]


def prepare_job(run: AgentTrainingRun, owner: Owner, defaults: Defaults = Defaults()) -> dict[str, Any]:
    pod = _workload_pod(run, owner, defaults, "prepare", ["python", "-m", "agentrun.workloads.prepare"], None)
    return _job(run, owner, Names(owner.name).prepare, "prepare", pod, retries=2)


def serving(run: AgentTrainingRun, owner: Owner, defaults: Defaults = Defaults()) -> list[dict[str, Any]]:
    """The vLLM Deployment and its Service. Adapters are found by name in the run's checkpoints through
    vLLM's filesystem resolver (any replica, after restarts); runtime loading stays enabled too. A server
    that asks for no GPU gets the CPU build of the serving image; builtin:tiny is served from the run's
    volume, where the prepare Job built it."""
    spec, names = run.spec, Names(owner.name)
    layout = storage.Layout(Path(DATA_MOUNT))
    on_gpu = spec.serving.resources.gpus > 0
    args = vllm.run_serve_args(spec, layout.served_base(owner.name, spec.model.base), gpus=spec.serving.resources.gpus,
                               port=SERVE_PORT)
    env = [
        *({"name": k, "value": v} for k, v in vllm.resolver_env(str(layout.checkpoints_dir(owner.name))).items()),
        *({"name": k, "value": v} for k, v in ({} if on_gpu else vllm.CPU_ENV).items()),
        {"name": "HF_HUB_CACHE", "value": str(layout.hub_cache())},
        {"name": "HF_HUB_OFFLINE", "value": "1"},  # the prepare Job cached the weights on the volume
    ]
    volumes, mounts = _volumes(run, read_only=True)
    health = {"httpGet": {"path": "/health", "port": "http"}}
    container = {
        "name": "vllm",
        "image": spec.serving.image or (defaults.serving if on_gpu else defaults.serving_cpu),
        "command": ["vllm"],
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": SERVE_PORT}],
        "resources": resources(spec.serving.resources),
        "volumeMounts": [m for m in mounts if m["name"] == "data"] + [{"name": "shm", "mountPath": "/dev/shm"}],
        "startupProbe": {**health, "periodSeconds": 10, "failureThreshold": 180},  # weights load for minutes
        "readinessProbe": {**health, "periodSeconds": 5},
        "livenessProbe": {**health, "periodSeconds": 15, "failureThreshold": 4},
        "securityContext": CONTAINER_SECURITY,
    }
    selector = {RUN_LABEL: owner.name, COMPONENT_LABEL: "serve"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, names.serve, "serve"),
        "spec": {
            "replicas": spec.serving.replicas,
            "selector": {"matchLabels": selector},
            "template": placed({
                "metadata": {"labels": labels(owner, "serve")},
                "spec": {
                    "securityContext": pod_security(SERVING_USER),
                    "containers": [container],
                    "volumes": [v for v in volumes if v["name"] == "data"]
                    + [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
                },
            }, run, owner, defaults.pods.under(spec.pods.of("serving"))),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, names.serve, "serve"),
        "spec": {"selector": selector, "ports": [{"name": "http", "port": SERVE_PORT, "targetPort": "http"}]},
    }
    return [deployment, service]


def serving_url(owner: Owner) -> str:
    return f"http://{Names(owner.name).serve}.{owner.namespace}.svc:{SERVE_PORT}/v1"


LEARNER_START_SECONDS = 600  # from the container's start until its /healthz answers: imports on a busy node


def learner_probes(stall_seconds: int) -> dict[str, dict[str, Any]]:
    """The learner's startup and liveness probes on its /healthz. It answers once the process has imported
    its libraries (the startup probe allows LEARNER_START_SECONDS for that), and 503 only after
    `stall_seconds` of training without a step, so the liveness probe adds little on top: two failures in
    a row (not one slow answer), a sixth of the timeout apart (5 to 30 s), so that a stalled learner is
    replaced within about a third more than its timeout."""
    period = max(5, min(30, stall_seconds // 6))
    get = {"httpGet": {"path": "/healthz", "port": "liveness"}}
    return {"startupProbe": {**get, "periodSeconds": 5, "failureThreshold": LEARNER_START_SECONDS // 5},
            "livenessProbe": {**get, "periodSeconds": period, "timeoutSeconds": min(10, period), "failureThreshold": 2}}


def learner(run: AgentTrainingRun, owner: Owner, defaults: Defaults = Defaults()) -> list[dict[str, Any]]:
    """The learner's Indexed Job (pod i is node i of a torchrun rendezvous at pod 0) and the headless
    Service that gives pod 0 its DNS name. Every start resumes from the newest complete checkpoint."""
    spec, names = run.spec, Names(owner.name)
    nodes, gpus = spec.learner.nodes, max(spec.learner.resources.gpus, 1)
    rendezvous = f"{names.learner}-0.{names.learner}.{owner.namespace}.svc"
    command = [
        "torchrun", f"--nnodes={nodes}", f"--nproc-per-node={gpus}", "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={rendezvous}", f"--master-port={RENDEZVOUS_PORT}",
        "-m", "agentrun.workloads.learner", "--resume", "latest", "--metrics-port", str(METRICS_PORT),
        *(["--liveness-port", str(LIVENESS_PORT)] if spec.learner.stall_timeout_seconds else []),
    ]
    env = [
        {"name": "AGENTRUN_SERVER_URL", "value": serving_url(owner)},
        {"name": "AGENTRUN_ENGINE", "value": "deepspeed"},
    ]
    pod = _workload_pod(run, owner, defaults, "learner", command, spec.learner.resources, env)
    pod["spec"]["subdomain"] = names.learner
    # NCCL's shared-memory transport between the pod's GPUs needs more than the runtime's 64 MiB /dev/shm
    pod["spec"]["volumes"].append({"name": "shm", "emptyDir": {"medium": "Memory"}})
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "shm", "mountPath": "/dev/shm"})
    learner_container = pod["spec"]["containers"][0]
    learner_container["ports"] = [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT},
                                  {"name": "metrics", "containerPort": METRICS_PORT}]
    if spec.learner.stall_timeout_seconds:
        learner_container["ports"].append({"name": "liveness", "containerPort": LIVENESS_PORT})
        learner_container.update(learner_probes(spec.learner.stall_timeout_seconds))
    job = _job(run, owner, names.learner, "learner", pod, retries=spec.learner.retries, completions=nodes,
               parallelism=nodes, completionMode="Indexed")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, names.learner, "learner"),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": {RUN_LABEL: owner.name, COMPONENT_LABEL: "learner"},
                 "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT}]},
    }
    return [job, service]


def evaluation_job(run: AgentTrainingRun, owner: Owner, step: int | None,
                   defaults: Defaults = Defaults()) -> dict[str, Any]:
    """Evaluate checkpoint `step` on the validation scenarios, or (step None) the newest checkpoint and
    the starting policy on the final split."""
    target = ["--final"] if step is None else ["--step", str(step)]
    command = ["python", "-m", "agentrun.workloads.evaluator", *target]
    env = [{"name": "AGENTRUN_SERVER_URL", "value": serving_url(owner)}]
    pod = _workload_pod(run, owner, defaults, "eval", command, ResourcesSpec(gpus=0), env, read_only=False)
    return _job(run, owner, Names(owner.name).eval(step), "eval", pod, retries=2,
                extra_labels={STEP_LABEL: "final" if step is None else str(step)})


def workloads(run: AgentTrainingRun, owner: Owner, defaults: Defaults = Defaults()) -> list[dict[str, Any]]:
    """What a running run needs besides its data and RBAC: server and learner."""
    return [*serving(run, owner, defaults), *learner(run, owner, defaults)]
