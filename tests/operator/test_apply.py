"""`apply.actions`: the API calls a reconcile makes, from what the watches show and what this process
last applied, checked case by case without a cluster (tests/operator/test_operator.py does it live)."""

from __future__ import annotations

from typing import Any

from agentrun.operator import apply

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "r-serve"}, "spec": {"replicas": 1}}
JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "r-learner"}, "spec": {}}
CLAIM = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "r-data"}, "spec": {}}
KEY = ("Deployment", "r-serve")


def applied_at(marker: str, obj: dict[str, Any] = DEPLOYMENT, seen: bool = True) -> dict[apply.Key, apply.Applied]:
    return {apply.key(obj): apply.Applied(apply.fingerprint(obj), marker, seen)}


def test_a_child_as_last_applied_costs_no_call() -> None:
    plan = apply.Plan(keep=(DEPLOYMENT,), create=(JOB,))
    assert apply.actions(plan, {KEY: "g3", ("Job", "r-learner"): "r7"}, applied_at("g3")) == []


def test_a_deleted_child_is_applied_again_and_counts_as_created() -> None:
    assert apply.actions(apply.Plan(keep=(DEPLOYMENT,)), {}, applied_at("g3")) == [apply.Apply(DEPLOYMENT, created=True)]


def test_a_child_the_watches_have_not_shown_yet_is_not_applied_again() -> None:
    plan = apply.Plan(keep=(DEPLOYMENT,), create=(JOB,))
    waiting = {**applied_at("g1", seen=False), **applied_at("", JOB, seen=False)}
    assert apply.actions(plan, {}, waiting) == []
    shown = apply.seen(waiting, {KEY: "g1", ("Job", "r-learner"): "r5"})
    assert all(a.seen for a in shown.values())
    assert apply.actions(plan, {}, shown) == [apply.Apply(DEPLOYMENT, created=True), apply.Create(JOB)]  # now gone
    assert not apply.seen(waiting, {KEY: "g0"})[KEY].seen  # an older version than the one applied


def test_a_child_edited_by_someone_else_is_applied_again() -> None:
    assert apply.actions(apply.Plan(keep=(DEPLOYMENT,)), {KEY: "g4"}, applied_at("g3")) == [
        apply.Apply(DEPLOYMENT, created=False)]


def test_a_changed_spec_is_applied_and_so_is_everything_after_a_restart() -> None:
    scaled = {**DEPLOYMENT, "spec": {"replicas": 2}}
    assert apply.actions(apply.Plan(keep=(scaled,)), {KEY: "g3"}, applied_at("g3")) == [apply.Apply(scaled, created=False)]
    assert apply.actions(apply.Plan(keep=(DEPLOYMENT,)), {KEY: "g3"}, {}) == [apply.Apply(DEPLOYMENT, created=False)]


def test_jobs_and_the_claim_are_created_once_and_never_changed() -> None:
    plan = apply.Plan(create=(JOB, CLAIM))
    assert apply.actions(plan, {}, {}) == [apply.Create(JOB), apply.Create(CLAIM)]
    assert apply.actions(plan, {("Job", "r-learner"): "r1"}, applied_at("", CLAIM, seen=False)) == []


def test_only_present_children_are_deleted() -> None:
    plan = apply.Plan(remove=(DEPLOYMENT, JOB))
    assert apply.actions(plan, {}, {}) == []
    assert apply.actions(plan, {("Job", "r-learner"): "r1"}, applied_at("g1")) == [
        apply.Delete("apps/v1", "Deployment", "r-serve"), apply.Delete("batch/v1", "Job", "r-learner")]


def test_the_marker_follows_a_deployments_spec_and_other_kinds_every_write() -> None:
    assert apply.marker({"metadata": {"generation": 4, "resourceVersion": "99"}}) == "g4"
    assert apply.marker({"metadata": {"resourceVersion": "99"}}) == "r99"
