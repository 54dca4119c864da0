"""What a run should look like next, from what the operator observes: a pure function, no API calls.

    Pending -> Preparing (prepare Job) -> Running (learner pods run; evaluation Jobs as steps pass)
            -> Evaluating (learner done; final evaluation) -> Succeeded
    any failure of prepare, learner or final evaluation -> Failed (reason, message)
    spec.suspend -> Suspended (workloads removed, data kept); clearing it goes back through Preparing
    and the learner resumes from the newest checkpoint.

`decide` returns the phase with a reason and the children that must exist or be gone; `apply` makes the
cluster match that idempotently, so a restart at any point repeats nothing and loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agentrun.spec.models import AgentTrainingRun
from agentrun.spec.status import Phase, RunStatus

PREPARED = "Prepared"  # condition type: the dataset and base model are on the volume


class JobState(StrEnum):
    ABSENT = "Absent"
    PENDING = "Pending"  # created; no pod running yet
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Observed:
    """The children's states as the operator last saw them."""

    prepare: JobState = JobState.ABSENT
    learner: JobState = JobState.ABSENT
    learner_failure: str = ""  # the Job's failure message
    final: JobState = JobState.ABSENT
    evaluations: dict[int, JobState] = field(default_factory=dict)  # by checkpoint step
    serving_ready: bool = False  # the serving Deployment has an available replica


@dataclass(frozen=True)
class Decision:
    phase: Phase
    reason: str
    message: str
    prepare: bool = False  # the prepare Job must exist
    workloads: bool = False  # server and learner must exist
    evaluations: tuple[int, ...] = ()  # evaluation Jobs that must exist, by step
    final: bool = False  # the final evaluation Job must exist
    remove_jobs: bool = False  # prepare, learner and evaluation Jobs must be gone (suspend)
    remove_workloads: bool = False  # server and learner must be gone
    prepared: bool = False  # the Prepared condition holds

    @property
    def terminal(self) -> bool:
        """Succeeded or Failed: entering it releases the server (GPUs); the finished Jobs stay as records."""
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


def is_prepared(status: RunStatus) -> bool:
    return any(c.type == PREPARED and c.status == "True" for c in status.conditions)


def due_evaluations(run: AgentTrainingRun, step: int) -> tuple[int, ...]:
    """Checkpoints the evaluation Jobs cover by `step`: every `evaluation.everySteps` (the learner
    keeps those checkpoints: they are multiples of checkpointEvery or protected as best)."""
    every = run.spec.evaluation.every_steps
    if not every:
        return ()
    return tuple(range(every, min(step, run.spec.training.steps) + 1, every))


def decide(run: AgentTrainingRun, status: RunStatus, observed: Observed) -> Decision:
    if status.phase in (Phase.SUCCEEDED, Phase.FAILED):  # the server was released on the way in
        last = next((c for c in status.conditions if c.type == status.phase.value), None)
        return Decision(status.phase, last.reason if last else status.phase.value,
                        last.message if last else "", prepared=is_prepared(status))
    if run.spec.suspend:
        jobs_left = any(s != JobState.ABSENT for s in (observed.prepare, observed.learner, observed.final,
                                                        *observed.evaluations.values()))
        removing = status.phase != Phase.SUSPENDED or jobs_left
        return Decision(Phase.SUSPENDED, "Suspended", "spec.suspend is set: workloads removed, data kept",
                        remove_jobs=removing, remove_workloads=removing, prepared=is_prepared(status))

    prepared = is_prepared(status) or observed.prepare == JobState.SUCCEEDED
    if not prepared:
        if observed.prepare == JobState.FAILED:
            return Decision(Phase.FAILED, "PrepareFailed", "the prepare Job failed; see its pod's logs",
                            remove_workloads=True)
        return Decision(Phase.PREPARING, "Preparing", "building the dataset and caching the base model",
                        prepare=True)

    evaluations = due_evaluations(run, status.progress.step)
    if observed.learner == JobState.FAILED:
        return Decision(Phase.FAILED, "LearnerFailed", observed.learner_failure or "the learner Job failed",
                        remove_workloads=True, prepared=True)
    if observed.learner == JobState.SUCCEEDED:
        if observed.final == JobState.SUCCEEDED:
            return Decision(Phase.SUCCEEDED, "Succeeded", "training and the final evaluation are done",
                            remove_workloads=True, prepared=True)
        if observed.final == JobState.FAILED:
            return Decision(Phase.FAILED, "EvaluationFailed", "the final evaluation Job failed",
                            remove_workloads=True, prepared=True)
        return Decision(Phase.EVALUATING, "Evaluating", f"evaluating the last checkpoint on the "
                        f"{run.spec.evaluation.final_split} split", workloads=True, evaluations=evaluations,
                        final=True, prepared=True)
    if observed.learner == JobState.RUNNING and status.progress.stalled:
        return Decision(Phase.RUNNING, "LearnerStalled", status.progress.stalled, workloads=True,
                        evaluations=evaluations, prepared=True)
    if observed.learner == JobState.RUNNING:
        return Decision(Phase.RUNNING, "Training", f"step {status.progress.step} of {run.spec.training.steps}",
                        workloads=True, evaluations=evaluations, prepared=True)
    if status.phase == Phase.RUNNING:  # a pod lost mid-run: its replacement resumes, the run keeps running
        return Decision(Phase.RUNNING, "LearnerRestarting", "a learner pod is being replaced; it resumes from "
                        "the newest checkpoint", workloads=True, evaluations=evaluations, prepared=True)
    return Decision(Phase.PREPARING, "StartingWorkloads", "waiting for the server and learner pods",
                    workloads=True, evaluations=evaluations, prepared=True)
