"""The children of an AgentTrainingRun (DESIGN §5) as plain manifest dicts: spec in, dicts out, no API
calls, so every field is testable without a cluster. The handlers only create, patch and delete them.

    <run>-data            PVC with the storage layout (unless spec.storage.pvc.existingClaim)
    <run>-spec            ConfigMap: the run's manifest, read by every workload pod
    <run>-workload        ServiceAccount + Role + RoleBinding: patch this run's status, nothing else
    <run>-prepare         Job: build the dataset, cache the base model on the PVC
    <run>-serve           vLLM Deployment + Service (LoRA resolver on the run's checkpoints)
    <run>-learner         Indexed Job (one pod per node) + headless Service for rendezvous
    <run>-eval-step-N     Job per evaluated checkpoint; <run>-eval-final on the final split
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from agentrun import storage
from agentrun.spec.crd import GROUP, PLURAL
from agentrun.spec.models import API_VERSION, KIND, AgentTrainingRun, ResourcesSpec

DATA_MOUNT = "/data"
SPEC_MOUNT = "/etc/agentrun"
SPEC_FILE = f"{SPEC_MOUNT}/run.yaml"
SERVE_PORT = 8000
METRICS_PORT = 9400
RENDEZVOUS_PORT = 29500
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts
WORKLOAD_USER = 1000  # the trainer image's non-root user
SERVING_USER = 1000  # the serving image's non-root user
VERSION = version("agentrun")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RUN_LABEL = f"{GROUP}/run"
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Images:
    """The images a run's pods get when its spec names none. The operator reads them from its environment,
    which the Helm chart fills from `images.*` in its values."""

    trainer: str = f"ghcr.io/agentrun/trainer:{VERSION}"
    serving: str = f"ghcr.io/agentrun/serving:{VERSION}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Images:
        default = cls()
        return cls(trainer=env.get("AGENTRUN_TRAINER_IMAGE") or default.trainer,
                   serving=env.get("AGENTRUN_SERVING_IMAGE") or default.serving)


@dataclass(frozen=True)
class Owner:
    """The run the children belong to (what ownerReferences and names need)."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class Names:
    run: str

    @property
    def pvc(self) -> str:
        return f"{self.run}-data"

    @property
    def spec(self) -> str:
        return f"{self.run}-spec"

    @property
    def workload(self) -> str:
        return f"{self.run}-workload"

    @property
    def prepare(self) -> str:
        return f"{self.run}-prepare"

    @property
    def serve(self) -> str:
        return f"{self.run}-serve"

    @property
    def learner(self) -> str:
        return f"{self.run}-learner"

    def eval(self, step: int | None) -> str:
        """`None` names the final evaluation."""
        return f"{self.run}-eval-final" if step is None else f"{self.run}-eval-{storage.checkpoint_name(step)}"


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


def max_lora_rank(rank: int) -> int:
    return next(allowed for allowed in VLLM_LORA_RANKS if allowed >= rank)


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


def _workload_pod(run: AgentTrainingRun, owner: Owner, images: Images, component: str, command: list[str],
                  resources_spec: ResourcesSpec | None, extra_env: list[dict[str, Any]] | None = None,
                  read_only: bool = False) -> dict[str, Any]:
    volumes, mounts = _volumes(run, read_only)
    container: dict[str, Any] = {
        "name": component,
        "image": run.spec.learner.image or images.trainer,
        "command": command,
        "env": [*_common_env(run), *(extra_env or [])],
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if resources_spec is not None:
        container["resources"] = resources(resources_spec)
    return {
        "metadata": {"labels": labels(owner, component)},
        "spec": {
            "serviceAccountName": Names(owner.name).workload,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": WORKLOAD_USER, "fsGroup": WORKLOAD_USER},
            "containers": [container],
            "volumes": volumes,
        },
    }


def _job(run: AgentTrainingRun, owner: Owner, name: str, component: str, pod: dict[str, Any],
         backoff_limit: int = 0, **job_spec: Any) -> dict[str, Any]:
    queue = {QUEUE_LABEL: run.spec.queue_name} if run.spec.queue_name else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(owner, name, component, queue),
        "spec": {"backoffLimit": backoff_limit, "template": pod, **job_spec},
    }


def pvc(run: AgentTrainingRun, owner: Owner) -> dict[str, Any] | None:
    """The claim the operator creates, or None when the spec names an existing one."""
    spec = run.spec.storage.pvc
    if spec.existing_claim:
        return None
    access = "ReadWriteMany" if run.spec.learner.nodes > 1 or run.spec.serving.replicas > 1 else "ReadWriteOnce"
    claim: dict[str, Any] = {"accessModes": [access], "resources": {"requests": {"storage": spec.size}}}
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


def prepare_job(run: AgentTrainingRun, owner: Owner, images: Images = Images()) -> dict[str, Any]:
    pod = _workload_pod(run, owner, images, "prepare", ["python", "-m", "agentrun.workloads.prepare"], None)
    return _job(run, owner, Names(owner.name).prepare, "prepare", pod, backoff_limit=2)


def serving(run: AgentTrainingRun, owner: Owner, images: Images = Images()) -> list[dict[str, Any]]:
    """The vLLM Deployment and its Service. Adapters are found by name in the run's checkpoints through
    vLLM's filesystem resolver (any replica, after restarts); runtime loading stays enabled too."""
    spec, names = run.spec, Names(owner.name)
    layout = storage.Layout(Path(DATA_MOUNT))
    args = [
        "serve", spec.model.base,
        "--port", str(SERVE_PORT),
        "--dtype", spec.model.dtype,
        "--max-model-len", str(spec.model.max_model_len),
        "--gpu-memory-utilization", str(spec.serving.gpu_memory_utilization),
        "--enable-lora",
        "--max-loras", str(spec.serving.max_loras),
        "--max-lora-rank", str(max_lora_rank(spec.training.lora.rank)),
        "--enable-auto-tool-choice",
        "--tool-call-parser", "hermes",
        *(["--revision", spec.model.revision] if spec.model.revision else []),
        *(["--tensor-parallel-size", str(spec.serving.resources.gpus)] if spec.serving.resources.gpus > 1 else []),
        *spec.serving.extra_args,
    ]
    env = [
        {"name": "VLLM_PLUGINS", "value": "lora_filesystem_resolver"},
        {"name": "VLLM_LORA_RESOLVER_CACHE_DIR", "value": str(layout.checkpoints_dir(owner.name))},
        {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"},
        {"name": "HF_HUB_CACHE", "value": str(layout.hub_cache())},
        {"name": "HF_HUB_OFFLINE", "value": "1"},  # the prepare Job cached the weights on the volume
    ]
    volumes, mounts = _volumes(run, read_only=True)
    health = {"httpGet": {"path": "/health", "port": "http"}}
    container = {
        "name": "vllm",
        "image": spec.serving.image or images.serving,
        "command": ["vllm"],
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": SERVE_PORT}],
        "resources": resources(spec.serving.resources),
        "volumeMounts": [m for m in mounts if m["name"] == "data"] + [{"name": "shm", "mountPath": "/dev/shm"}],
        "startupProbe": {**health, "periodSeconds": 10, "failureThreshold": 180},  # weights load for minutes
        "readinessProbe": {**health, "periodSeconds": 5},
        "livenessProbe": {**health, "periodSeconds": 15, "failureThreshold": 4},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    selector = {RUN_LABEL: owner.name, COMPONENT_LABEL: "serve"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, names.serve, "serve"),
        "spec": {
            "replicas": spec.serving.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(owner, "serve")},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": SERVING_USER, "fsGroup": SERVING_USER},
                    "containers": [container],
                    "volumes": [v for v in volumes if v["name"] == "data"]
                    + [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
                },
            },
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


def learner(run: AgentTrainingRun, owner: Owner, images: Images = Images()) -> list[dict[str, Any]]:
    """The learner's Indexed Job (pod i is node i of a torchrun rendezvous at pod 0) and the headless
    Service that gives pod 0 its DNS name. Every start resumes from the newest complete checkpoint."""
    spec, names = run.spec, Names(owner.name)
    nodes, gpus = spec.learner.nodes, max(spec.learner.resources.gpus, 1)
    rendezvous = f"{names.learner}-0.{names.learner}.{owner.namespace}.svc"
    command = [
        "torchrun", f"--nnodes={nodes}", f"--nproc-per-node={gpus}", "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={rendezvous}", f"--master-port={RENDEZVOUS_PORT}",
        "-m", "agentrun.workloads.learner", "--resume", "latest", "--metrics-port", str(METRICS_PORT),
    ]
    env = [
        {"name": "AGENTRUN_SERVER_URL", "value": serving_url(owner)},
        {"name": "AGENTRUN_ENGINE", "value": "deepspeed"},
    ]
    pod = _workload_pod(run, owner, images, "learner", command, spec.learner.resources, env)
    pod["spec"]["subdomain"] = names.learner
    pod["spec"]["containers"][0]["ports"] = [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT},
                                             {"name": "metrics", "containerPort": METRICS_PORT}]
    job = _job(run, owner, names.learner, "learner", pod, completions=nodes, parallelism=nodes,
               completionMode="Indexed")
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
                   images: Images = Images()) -> dict[str, Any]:
    """Evaluate checkpoint `step` on the validation scenarios, or (step None) the newest checkpoint and
    the starting policy on the final split."""
    target = ["--final"] if step is None else ["--step", str(step)]
    command = ["python", "-m", "agentrun.workloads.evaluator", *target]
    env = [{"name": "AGENTRUN_SERVER_URL", "value": serving_url(owner)}]
    pod = _workload_pod(run, owner, images, "eval", command, ResourcesSpec(gpus=0), env, read_only=False)
    return _job(run, owner, Names(owner.name).eval(step), "eval", pod, backoff_limit=2)


def workloads(run: AgentTrainingRun, owner: Owner, images: Images = Images()) -> list[dict[str, Any]]:
    """What a running run needs besides its data and RBAC: server and learner."""
    return [*serving(run, owner, images), *learner(run, owner, images)]
