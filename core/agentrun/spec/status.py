"""The `status` of an AgentTrainingRun: what `kubectl get atr` shows, typed like the spec so the CRD
schema is generated from it. The operator owns phase, conditions and times; the learner and evaluator
pods patch only their own keys under `progress` (DESIGN §5). Everything here is bounded in size."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from agentrun.spec.base import SpecModel


class Phase(StrEnum):
    PENDING = "Pending"
    PREPARING = "Preparing"
    RUNNING = "Running"
    EVALUATING = "Evaluating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


DATE_TIME = {"format": "date-time"}  # RFC 3339, as kubectl and clients expect of metav1.Time fields
# `kubectl apply`, server-side apply and strategic merges treat conditions as one entry per type
KEYED_BY_TYPE = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class Condition(SpecModel):
    """A `metav1.Condition`."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type, e.g. `Ready`, `Prepared`, `Training`, `Failed`."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: Annotated[str, Field(max_length=1024)]
    """One CamelCase word for machines."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """A sentence for people."""
    last_transition_time: Annotated[str, Field(json_schema_extra=DATE_TIME)]
    """When the status last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The spec generation the condition was computed from."""


class Evaluation(SpecModel):
    step: Annotated[int, Field(ge=0)]
    """Step of the evaluated checkpoint (0 = the starting policy)."""
    split: Annotated[str, Field(max_length=32)]
    """`validation` or the final split."""
    reward: float
    """Mean reward over the evaluated questions."""
    accuracy: Annotated[float, Field(ge=0.0, le=1.0)]
    """Fraction of questions answered correctly."""
    sources_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """Fraction of questions whose cited sources were right."""
    turns: Annotated[float, Field(ge=0.0)] | None = None
    """Mean turns per question."""
    latency_p50_seconds: Annotated[float, Field(ge=0.0)] | None = None
    """Median seconds per question."""


class Progress(SpecModel):
    step: Annotated[int, Field(ge=0)] = 0
    """Last completed optimizer step (written by the learner)."""
    total_steps: Annotated[int, Field(ge=0)] | None = None
    """`spec.training.steps` (written by the operator)."""
    reward: float | None = None
    """Mean reward of the last step's rollouts (written by the learner)."""
    latest_checkpoint: Annotated[str, Field(max_length=64)] | None = None
    """Newest complete checkpoint, e.g. `step-000040` (written by the learner)."""
    best_checkpoint: Annotated[str, Field(max_length=64)] | None = None
    """Checkpoint with the best validation reward so far (written by the evaluator)."""
    last_evaluation: Evaluation | None = None
    """The newest evaluation's result (written by the evaluator)."""
    stalled: Annotated[str, Field(max_length=1024)] | None = None
    """Why the learner's liveness probe fails: no step completed for `learner.stallTimeoutSeconds`
    (written by the learner, cleared by its next step)."""


class RunStatus(SpecModel):
    phase: Phase | None = None
    """Pending, Preparing, Running, Evaluating, Succeeded, Failed or Suspended."""
    conditions: Annotated[list[Condition], Field(max_length=16, json_schema_extra=KEYED_BY_TYPE)] = []
    """Latest observations of the run's state, one per type."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The spec generation the operator last acted on."""
    progress: Progress = Progress()
    """Training and evaluation progress."""
    start_time: Annotated[str, Field(json_schema_extra=DATE_TIME)] | None = None
    """When the operator first created the run's workloads (RFC 3339)."""
    completion_time: Annotated[str, Field(json_schema_extra=DATE_TIME)] | None = None
    """When the run reached Succeeded or Failed (RFC 3339)."""
