"""A run's status conditions from the lifecycle's decision: a pure function (the clock is an argument).

    Prepared      the dataset and base model are on the volume
    ServingReady  the serving Deployment has an available replica (the learner waits for it)
    Training      the learner's pods run
    Suspended     spec.suspend holds and the workloads are gone or going
    Succeeded / Failed
"""

from __future__ import annotations

from typing import Any

from agentrun.operator.lifecycle import PREPARED, Decision, Observed
from agentrun.spec.status import Condition, Phase

SERVING_READY = "ServingReady"


def serving(decision: Decision, observed: Observed) -> tuple[str, str, str]:
    if not decision.workloads:
        return "False", "NotServing", f"no server while the run is {decision.phase.value}"
    if observed.serving_ready:
        return "True", "ServerAvailable", "the serving Deployment has an available replica"
    return "False", "ServerStarting", "waiting for the server's readiness (/health): vLLM loads the weights"


def conditions(old: list[Condition], decision: Decision, observed: Observed, generation: int,
               now: str) -> list[dict[str, Any]]:
    """The run's conditions after `decision`; a condition's transition time moves only when its status does."""
    phase = decision.phase
    wanted = {
        PREPARED: ("True", "Prepared", "dataset and base model are on the volume") if decision.prepared
        else ("False", decision.reason, decision.message),
        SERVING_READY: serving(decision, observed),
        "Training": ("True" if phase == Phase.RUNNING else "False", decision.reason, decision.message),
        "Suspended": ("True" if phase == Phase.SUSPENDED else "False", decision.reason, decision.message),
        "Succeeded": ("True" if phase == Phase.SUCCEEDED else "False", decision.reason, decision.message),
        "Failed": ("True" if phase == Phase.FAILED else "False", decision.reason, decision.message),
    }
    previous = {c.type: c for c in old}
    result = []
    for kind, (status, reason, message) in wanted.items():
        before = previous.get(kind)
        moved = before is None or before.status != status
        result.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": now if moved or before is None else before.last_transition_time,
                       "observedGeneration": generation})
    return result
