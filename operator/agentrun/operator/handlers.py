"""kopf handlers: observe, `lifecycle.decide`, `apply`, `conditions`. They stay thin glue: the manifests
are `children`'s, the state machine is `lifecycle`'s, the API calls are planned by `apply`.

Every run is reconciled on create/update/resume and by a timer. Every child the operator owns is kept in
one kopf index, fed by watches filtered on the server by the managed-by label, so a reconcile reads no
lists from the API server, and a child deleted or edited by hand is seen within a watch event and
applied back on the run's next tick. Status is a merge patch.

    kopf run -m agentrun.operator.handlers --all-namespaces      (or: agentrun operator)
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from agentrun.kube import Credentials, Kube, KubeError
from agentrun.metrics import OperatorMetrics
from agentrun.operator import apply as applying
from agentrun.operator import children
from agentrun.operator.conditions import conditions
from agentrun.operator.lifecycle import Decision, JobState, Observed, decide
from agentrun.spec.crd import GROUP, PLURAL, VERSION
from agentrun.spec.models import AgentTrainingRun
from agentrun.spec.status import Evaluation, Phase, RunStatus

MANAGED = {"app.kubernetes.io/managed-by": "agentrun-operator"}
# The kinds of the children the watches index, as kopf names resources: (API group, plural).
CHILD_RESOURCES = {("batch", "jobs"), ("apps", "deployments"), ("", "services"), ("", "configmaps"),
                   ("", "serviceaccounts"), ("rbac.authorization.k8s.io", "roles"),
                   ("rbac.authorization.k8s.io", "rolebindings")}
RECONCILE_INTERVAL = float(os.environ.get("AGENTRUN_RECONCILE_INTERVAL", "2"))
DEFAULTS = children.Defaults.from_env(os.environ)  # for what a run's spec leaves unsaid
ANNOTATION_PREFIX = GROUP
TIMER_TICK = "Timer 'periodic' succeeded"

# The operator's view of the runs, read by the metrics at scrape time.
phases: dict[tuple[str, str], str] = {}
evaluations: dict[tuple[str, str], dict[str, float | int | str]] = {}  # last evaluation, EvalSummary keys
metrics = OperatorMetrics(lambda: dict(phases), lambda: dict(evaluations))


def credentials(info: kopf.ConnectionInfo) -> Credentials:
    """agentrun.kube's credentials from kopf's login (whose *_data fields are base64, as in a kubeconfig)."""

    def pem(data: str | bytes | None) -> str | None:
        return base64.b64decode(data).decode() if data else None

    cert, key = info.certificate_path, info.private_key_path
    return Credentials(server=info.server, token=info.token, ca_data=pem(info.ca_data),
                       ca_path=str(info.ca_path) if info.ca_path else None, cert_path=str(cert) if cert else None,
                       key_path=str(key) if key else None, cert_data=pem(info.certificate_data),
                       key_data=pem(info.private_key_data), insecure=bool(info.insecure))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    # Handler progress lives in annotations: the status schema is ours and kopf's keys would be pruned.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    settings.posting.level = logging.WARNING  # Events: our own, not every handler log line
    settings.watching.server_timeout = 300
    # Only the operator's own children cross the wire, not every Job and ConfigMap of the cluster.
    settings.watching.label_selectors[is_child_resource] = ",".join(f"{k}={v}" for k, v in MANAGED.items())
    # Every run ticks every few seconds: per-tick INFO lines (kopf's and httpx's) would bury what matters.
    logging.getLogger("kopf.objects").addFilter(lambda record: not record.getMessage().startswith(TIMER_TICK))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.PermanentError("no credentials: neither in a pod nor with a kubeconfig")
    memo.kube = Kube(credentials(info))
    port = int(os.environ.get("AGENTRUN_OPERATOR_METRICS_PORT", "0"))
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, registry=metrics.registry)
        logger.info("metrics on :%d/metrics", port)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    memo.kube.close()


def is_child_resource(resource: kopf.Resource) -> bool:
    return (resource.group, resource.plural) in CHILD_RESOURCES


def job_state(status: Mapping[str, Any]) -> tuple[JobState, str]:
    """A Job's state and, when it failed, why (from its Failed condition)."""
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobState.SUCCEEDED, ""
        if condition.get("type") == "Failed":
            return JobState.FAILED, f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip()
    # Pods that already succeeded count as running until the Job controller marks the Job Complete: without
    # this, a learner's last moments would read as "waiting for pods" and the phase would step back.
    if status.get("ready") or status.get("succeeded"):
        return JobState.RUNNING, ""
    return JobState.PENDING, ""


@dataclass(frozen=True)
class Child:
    """What the index keeps of one child."""

    kind: str
    name: str
    marker: str  # applying.marker: which version of it the cluster holds
    state: JobState = JobState.ABSENT  # Jobs
    failure: str = ""  # Jobs that failed: why
    step: str = ""  # evaluation Jobs: the checkpoint step, or "final"
    available: bool = False  # Deployments: at least one replica available


@kopf.index(is_child_resource, labels=MANAGED, id="run_children")
def run_children(resource: kopf.Resource, namespace: str, name: str, labels: Mapping[str, str],
                 body: kopf.Body, status: Mapping[str, Any], **_: Any) -> dict[tuple[str, str], Child]:
    """(namespace, run) -> every child the operator created, as the watches last saw it."""
    state, failure = job_state(status) if resource.kind == "Job" else (JobState.ABSENT, "")
    child = Child(resource.kind, name, applying.marker(body), state, failure, labels.get(children.STEP_LABEL, ""),
                  available=bool(status.get("availableReplicas")))
    return {(namespace, labels.get(children.RUN_LABEL, "")): child}


def observe(names: children.Names, found: Any) -> tuple[Observed, dict[applying.Key, str]]:
    """The lifecycle's view of a run's children, and the version markers `apply` compares."""
    jobs = {child.name: child for child in found if child.kind == "Job"}
    state = lambda job: jobs[job].state if job in jobs else JobState.ABSENT  # noqa: E731
    evaluations = {int(child.step): child.state for child in jobs.values() if child.step.isdigit()}
    serving_ready = any(child.kind == "Deployment" and child.name == names.serve and child.available
                        for child in found)
    observed = Observed(prepare=state(names.prepare), learner=state(names.learner),
                        learner_failure=jobs[names.learner].failure if names.learner in jobs else "",
                        final=state(names.eval(None)), evaluations=evaluations, serving_ready=serving_ready)
    return observed, {(child.kind, child.name): child.marker for child in found}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_keys(evaluation: Evaluation) -> dict[str, float | int | str]:
    """A status evaluation under the names `agentrun.metrics.EVAL_SERIES` reads (EvalSummary's)."""
    values = {"split": evaluation.split, "step": evaluation.step, "answer_accuracy": evaluation.accuracy,
              "mean_reward": evaluation.reward, "sources_accuracy": evaluation.sources_accuracy,
              "mean_turns": evaluation.turns, "latency_p50_seconds": evaluation.latency_p50_seconds}
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Desired:
    """What one generation of a run's spec asks for: built once per generation, because a timer tick
    that changes nothing must stay cheap (building the children costs milliseconds, mostly the spec's
    YAML, and every run ticks every RECONCILE_INTERVAL seconds)."""

    run: AgentTrainingRun
    owner: children.Owner
    base: tuple[dict[str, Any], ...]  # PVC (unless an existing claim), RBAC, spec ConfigMap
    prepare: dict[str, Any]
    workloads: tuple[dict[str, Any], ...]

    @classmethod
    def build(cls, run: AgentTrainingRun, owner: children.Owner) -> Desired:
        pvc = children.pvc(run, owner)
        base = (*([pvc] if pvc else []), *children.workload_rbac(owner), children.spec_config_map(run, owner))
        return cls(run, owner, base, children.prepare_job(run, owner, DEFAULTS),
                   tuple(children.workloads(run, owner, DEFAULTS)))


reconciling: dict[str, threading.Lock] = {}  # run uid -> held while a reconcile of that run runs

# run uid -> (generation, Desired): one entry per run, replaced when the spec's generation moves.
desired: dict[str, tuple[int, Desired]] = {}


def desired_for(spec: Mapping[str, Any], meta: Mapping[str, Any], kind: str, name: str, namespace: str) -> Desired:
    """The cached `Desired` of this generation; raises ValidationError for a spec the model refuses."""
    uid, generation = meta["uid"], meta.get("generation", 0)
    cached = desired.get(uid)
    if cached is not None and cached[0] == generation:
        return cached[1]
    run = AgentTrainingRun.model_validate({"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                                           "metadata": {"name": name, "namespace": namespace}, "spec": spec})
    built = Desired.build(run, children.Owner(name=name, namespace=namespace, uid=uid))
    desired[uid] = (generation, built)
    return built


# run uid -> what this process last applied of each kept child. After a restart it is empty, and one
# apply per child (a no-op where nothing drifted) refills it.
applied: dict[str, dict[applying.Key, applying.Applied]] = {}


def plan(want: Desired, decision: Decision, observed: Observed) -> applying.Plan:
    """Which children the decision keeps, creates and removes."""
    run, owner = want.run, want.owner
    keep: list[dict[str, Any]] = []
    create: list[dict[str, Any]] = []
    remove: list[dict[str, Any]] = []
    if not decision.terminal:
        for obj in want.base:
            (create if obj["kind"] == "PersistentVolumeClaim" else keep).append(obj)
    if decision.prepare:
        create.append(want.prepare)
    if decision.workloads:
        for obj in want.workloads:
            (create if obj["kind"] == "Job" else keep).append(obj)
    create += [children.evaluation_job(run, owner, step, DEFAULTS) for step in decision.evaluations]
    if decision.final:
        create.append(children.evaluation_job(run, owner, None, DEFAULTS))
    if decision.remove_workloads:
        # a finished learner Job is the run's record
        remove += [obj for obj in want.workloads if not (decision.terminal and obj["kind"] == "Job")]
    if decision.remove_jobs:
        remove.append(want.prepare)
        remove += [children.evaluation_job(run, owner, step) for step in observed.evaluations]
        remove.append(children.evaluation_job(run, owner, None))
    return applying.Plan(tuple(keep), tuple(create), tuple(remove))


def reconcile(body: kopf.Body, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any],
              name: str, namespace: str, patch: kopf.Patch, memo: kopf.Memo, run_children: kopf.Index,
              logger: logging.Logger) -> None:
    # kopf runs a run's timer beside its change handlers: one reconcile of a run at a time, and `forget`
    # waits for the one in flight, so a deleted run's series are not written again after it.
    with reconciling.setdefault(meta["uid"], threading.Lock()):
        started = time.perf_counter()
        result = "error"
        try:
            _reconcile(body, spec, status, meta, name, namespace, patch, memo.kube, run_children, logger)
            result = "ok"
        finally:
            metrics.reconciles.labels(namespace, name, result).inc()
            metrics.reconcile_seconds.labels(result).observe(time.perf_counter() - started)


def _reconcile(body: kopf.Body, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any],
               name: str, namespace: str, patch: kopf.Patch, kube: Kube, run_children: kopf.Index,
               logger: logging.Logger) -> None:
    current = RunStatus.model_validate({k: v for k, v in status.items() if k in STATUS_KEYS})
    try:
        want = desired_for(spec, meta, body["kind"], name, namespace)
    except ValidationError as exc:  # the CRD's schema admits little the model refuses, but never crash on it
        decision = Decision(Phase.FAILED, "InvalidSpec", str(exc).replace("\n", "; ")[:1024])
        observed = Observed()
    else:
        observed, found = observe(children.Names(name), run_children.get((namespace, name), []))
        decision = decide(want.run, current, observed)
        try:
            mine = applied[meta["uid"]] = applying.seen(applied.get(meta["uid"], {}), found)
            for kind in applying.execute(kube, namespace, applying.actions(plan(want, decision, observed), found, mine),
                                         mine):
                metrics.children_created.labels(namespace, name, kind).inc()
        except KubeError as exc:
            kopf.event(body, type="Warning", reason="ChildError", message=str(exc)[:1024])
            raise kopf.TemporaryError(str(exc), delay=RECONCILE_INTERVAL) from exc

    phases[(namespace, name)] = decision.phase.value
    if current.progress.last_evaluation is not None:
        evaluations[(namespace, name)] = summary_keys(current.progress.last_evaluation)
    if current.phase != decision.phase:
        kind = "Warning" if decision.phase == Phase.FAILED else "Normal"
        kopf.event(body, type=kind, reason=decision.reason,
                   message=f"{current.phase or 'New'} -> {decision.phase}: {decision.message}")
        logger.info("phase %s -> %s (%s)", current.phase, decision.phase, decision.reason)
    generation = meta.get("generation", 0)
    changes: dict[str, Any] = {
        "phase": decision.phase.value,
        "observedGeneration": generation,
        "conditions": conditions(current.conditions, decision, observed, generation, now()),
    }
    if current.progress.total_steps != spec.get("training", {}).get("steps"):
        changes["progress"] = {"totalSteps": spec.get("training", {}).get("steps")}
    if current.start_time is None and decision.phase != Phase.PENDING:
        changes["startTime"] = now()
    if decision.terminal and current.completion_time is None:
        changes["completionTime"] = now()
    for key, value in changes.items():
        if status.get(key) != value:
            patch.status[key] = value


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_change(**kwargs: Any) -> None:
    reconcile(**{k: kwargs[k] for k in RECONCILE_ARGS})


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECONCILE_INTERVAL, initial_delay=random.uniform(0, RECONCILE_INTERVAL))
def periodic(**kwargs: Any) -> None:
    reconcile(**{k: kwargs[k] for k in RECONCILE_ARGS})


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(name: str, namespace: str, uid: str, **_: Any) -> None:
    """Children go with the garbage collector (owner references); only this process's memory is ours."""
    with reconciling.pop(uid, None) or contextlib.nullcontext():
        phases.pop((namespace, name), None)
        evaluations.pop((namespace, name), None)
        desired.pop(uid, None)
        applied.pop(uid, None)
        metrics.forget(namespace, name)


STATUS_KEYS = {field.alias or name for name, field in RunStatus.model_fields.items()}
RECONCILE_ARGS = ("body", "spec", "status", "meta", "name", "namespace", "patch", "memo", "run_children", "logger")
