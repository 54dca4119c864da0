"""kopf handlers: observe, `lifecycle.decide`, apply. They stay thin; the manifests are `children`'s and
the state machine is `lifecycle`'s.

Every run is reconciled on create/update/resume and by a timer; the Jobs the operator owns are kept in a
kopf index (fed by a watch), so a reconcile reads no lists from the API server. Applying a decision is
idempotent: create-if-absent by name, delete-if-present, status as a merge patch.

    kopf run -m agentrun.operator.handlers --all-namespaces      (or: agentrun operator)
"""

from __future__ import annotations

import base64
import datetime
import json
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

from agentrun.kube import Credentials, Kube, KubeError, write_pem
from agentrun.metrics import OperatorMetrics
from agentrun.operator import children
from agentrun.operator.lifecycle import PREPARED, Decision, JobState, Observed, decide
from agentrun.spec.crd import GROUP, PLURAL, VERSION
from agentrun.spec.models import AgentTrainingRun
from agentrun.spec.status import Condition, Evaluation, Phase, RunStatus

MANAGED = {"app.kubernetes.io/managed-by": "agentrun-operator"}
RECONCILE_INTERVAL = float(os.environ.get("AGENTRUN_RECONCILE_INTERVAL", "2"))
IMAGES = children.Images.from_env(os.environ)  # for runs whose spec names no image
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
    if info.certificate_data and not cert:
        cert, key = write_pem(pem(info.certificate_data) or ""), write_pem(pem(info.private_key_data) or "")
    return Credentials(server=info.server, token=info.token, ca_data=pem(info.ca_data),
                       ca_path=str(info.ca_path) if info.ca_path else None, cert_path=str(cert) if cert else None,
                       key_path=str(key) if key else None, insecure=bool(info.insecure))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    # Handler progress lives in annotations: the status schema is ours and kopf's keys would be pruned.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    settings.posting.level = logging.WARNING  # Events: our own, not every handler log line
    settings.watching.server_timeout = 300
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


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def run_jobs(namespace: str, name: str, labels: Mapping[str, str], status: Mapping[str, Any],
             **_: Any) -> dict[tuple[str, str], tuple[str, JobState, str]]:
    """(namespace, run) -> (job name, state, failure) for every Job the operator created."""
    state, failure = job_state(status)
    return {(namespace, labels.get(children.RUN_LABEL, "")): (name, state, failure)}


def observe(names: children.Names, jobs: Any) -> Observed:
    by_name = {name: (state, failure) for name, state, failure in jobs}
    state = lambda job: by_name.get(job, (JobState.ABSENT, ""))[0]  # noqa: E731
    prefix = names.eval(0)[: -len("000000")]
    evaluations = {int(job[len(prefix):]): s for job, (s, _) in by_name.items()
                   if job.startswith(prefix) and job[len(prefix):].isdigit()}
    return Observed(prepare=state(names.prepare), learner=state(names.learner),
                    learner_failure=by_name.get(names.learner, (JobState.ABSENT, ""))[1],
                    final=state(names.eval(None)), evaluations=evaluations)


def summary_keys(evaluation: Evaluation) -> dict[str, float | int | str]:
    """A status evaluation under the names `agentrun.metrics.EVAL_SERIES` reads (EvalSummary's)."""
    values = {"split": evaluation.split, "step": evaluation.step, "answer_accuracy": evaluation.accuracy,
              "mean_reward": evaluation.reward, "sources_accuracy": evaluation.sources_accuracy,
              "mean_turns": evaluation.turns, "latency_p50_seconds": evaluation.latency_p50_seconds}
    return {key: value for key, value in values.items() if value is not None}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(old: list[Condition], decision: Decision, generation: int) -> list[dict[str, Any]]:
    """The run's conditions after `decision`; a condition's transition time moves only when its status does."""
    wanted = {
        PREPARED: ("True", "Prepared", "dataset and base model are on the volume") if decision.prepared
        else ("False", decision.reason, decision.message),
        "Training": ("True", decision.reason, decision.message) if decision.phase == Phase.RUNNING
        else ("False", decision.reason, decision.message),
        "Succeeded": ("True" if decision.phase == Phase.SUCCEEDED else "False", decision.reason, decision.message),
        "Failed": ("True" if decision.phase == Phase.FAILED else "False", decision.reason, decision.message),
    }
    previous = {c.type: c for c in old}
    result = []
    for kind, (status, reason, message) in wanted.items():
        before = previous.get(kind)
        changed = before is None or before.status != status
        result.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": now() if changed else before.last_transition_time,  # type: ignore[union-attr]
                       "observedGeneration": generation})
    return result


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
        return cls(run, owner, base, children.prepare_job(run, owner, IMAGES),
                   tuple(children.workloads(run, owner, IMAGES)))


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


# (run uid, kind, name) -> fingerprint of what this process last applied: a reconcile with nothing to
# change makes no API calls. Jobs are not remembered here: the job index is their truth. After a restart
# the map is empty and one round of create calls answers 409 for what exists.
applied: dict[tuple[str, str, str], str] = {}


def apply(kube: Kube, want: Desired, decision: Decision, observed: Observed) -> None:
    """Make the children match the decision: create what is missing, delete what must go."""
    run, owner = want.run, want.owner
    names = children.Names(owner.name)

    def ensure(obj: dict[str, Any]) -> None:
        key = (owner.uid, obj["kind"], obj["metadata"]["name"])
        fingerprint = json.dumps(obj.get("data"), sort_keys=True)
        if applied.get(key) == fingerprint:
            return
        if kube.create(obj):
            metrics.children_created.labels(owner.namespace, owner.name, obj["kind"]).inc()
        elif obj["kind"] == "ConfigMap":  # it exists, maybe from an older spec (suspend, ...): pods read it
            kube.merge_patch("v1", "ConfigMap", owner.namespace, names.spec, {"data": obj["data"]})
        applied[key] = fingerprint

    def ensure_job(obj: dict[str, Any], state: JobState) -> None:
        if state == JobState.ABSENT and kube.create(obj):
            metrics.children_created.labels(owner.namespace, owner.name, "Job").inc()

    def remove(obj: dict[str, Any]) -> None:
        applied.pop((owner.uid, obj["kind"], obj["metadata"]["name"]), None)
        kube.delete(obj["apiVersion"], obj["kind"], owner.namespace, obj["metadata"]["name"])

    if not decision.terminal:
        for obj in want.base:
            ensure(obj)
    if decision.prepare:
        ensure_job(want.prepare, observed.prepare)
    if decision.workloads:
        for obj in want.workloads:
            if obj["kind"] == "Job":
                ensure_job(obj, observed.learner)
            else:
                ensure(obj)
    for step in decision.evaluations:
        ensure_job(children.evaluation_job(run, owner, step, IMAGES),
                   observed.evaluations.get(step, JobState.ABSENT))
    if decision.final:
        ensure_job(children.evaluation_job(run, owner, None, IMAGES), observed.final)
    if decision.remove_workloads:
        for obj in want.workloads:
            if not (decision.terminal and obj["kind"] == "Job"):  # a finished learner Job is the run's record
                remove(obj)
    if decision.remove_jobs:
        remove(want.prepare)
        for step in observed.evaluations:
            remove(children.evaluation_job(run, owner, step))
        if observed.final != JobState.ABSENT:
            remove(children.evaluation_job(run, owner, None))


def reconcile(body: kopf.Body, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any],
              name: str, namespace: str, patch: kopf.Patch, memo: kopf.Memo, run_jobs: kopf.Index,
              logger: logging.Logger) -> None:
    started = time.perf_counter()
    result = "error"
    try:
        # kopf runs a run's timer beside its change handlers: one reconcile of a run at a time.
        with reconciling.setdefault(meta["uid"], threading.Lock()):
            _reconcile(body, spec, status, meta, name, namespace, patch, memo.kube, run_jobs, logger)
        result = "ok"
    finally:
        metrics.reconciles.labels(namespace, name, result).inc()
        metrics.reconcile_seconds.labels(result).observe(time.perf_counter() - started)


def _reconcile(body: kopf.Body, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any],
               name: str, namespace: str, patch: kopf.Patch, kube: Kube, run_jobs: kopf.Index,
               logger: logging.Logger) -> None:
    current = RunStatus.model_validate({k: v for k, v in status.items() if k in STATUS_KEYS})
    try:
        want = desired_for(spec, meta, body["kind"], name, namespace)
    except ValidationError as exc:  # the CRD's schema admits little the model refuses, but never crash on it
        decision = Decision(Phase.FAILED, "InvalidSpec", str(exc).replace("\n", "; ")[:1024])
    else:
        observed = observe(children.Names(name), run_jobs.get((namespace, name), []))
        decision = decide(want.run, current, observed)
        try:
            apply(kube, want, decision, observed)
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
        "conditions": conditions(current.conditions, decision, generation),
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
    phases.pop((namespace, name), None)
    evaluations.pop((namespace, name), None)
    desired.pop(uid, None)
    reconciling.pop(uid, None)
    for key in [key for key in applied if key[0] == uid]:
        del applied[key]


STATUS_KEYS = {field.alias or name for name, field in RunStatus.model_fields.items()}
RECONCILE_ARGS = ("body", "spec", "status", "meta", "name", "namespace", "patch", "memo", "run_jobs", "logger")
