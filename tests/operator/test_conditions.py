"""`conditions`: what each decision shows, and transition times that move only with a status."""

from __future__ import annotations

from agentrun.operator.conditions import conditions
from agentrun.operator.lifecycle import Decision, Observed
from agentrun.spec.status import Condition, Phase

STARTING = Decision(Phase.PREPARING, "StartingWorkloads", "waiting", workloads=True, prepared=True)


def by_type(items: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["type"]: c for c in items}


def test_serving_ready_follows_the_servers_availability_while_workloads_run() -> None:
    waiting = by_type(conditions([], STARTING, Observed(), 1, "T1"))["ServingReady"]
    assert (waiting["status"], waiting["reason"]) == ("False", "ServerStarting")
    ready = by_type(conditions([], STARTING, Observed(serving_ready=True), 1, "T1"))["ServingReady"]
    assert (ready["status"], ready["reason"]) == ("True", "ServerAvailable")
    suspended = Decision(Phase.SUSPENDED, "Suspended", "spec.suspend is set", remove_workloads=True)
    shown = by_type(conditions([], suspended, Observed(serving_ready=True), 2, "T1"))
    assert shown["ServingReady"]["status"] == "False" and shown["Suspended"]["status"] == "True"


def test_a_transition_time_moves_only_when_its_status_does() -> None:
    first = conditions([], STARTING, Observed(), 1, "T1")
    old = [Condition.model_validate(c) for c in first]
    again = by_type(conditions(old, STARTING, Observed(serving_ready=True), 1, "T2"))
    assert again["ServingReady"]["lastTransitionTime"] == "T2"
    assert again["Prepared"]["lastTransitionTime"] == "T1" and again["Training"]["lastTransitionTime"] == "T1"
