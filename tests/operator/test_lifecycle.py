"""The run's state machine, from observed children to phase and wanted children (no cluster needed)."""

from __future__ import annotations

from agentrun.operator.lifecycle import PREPARED, JobState, Observed, decide, due_evaluations
from agentrun.spec.models import AgentTrainingRun
from agentrun.spec.status import Condition, Phase, Progress, RunStatus

RUN = AgentTrainingRun.model_validate({"metadata": {"name": "r"}, "spec": {
    "training": {"steps": 100}, "evaluation": {"everySteps": 20}}})
PREPARED_STATUS = RunStatus(phase=Phase.PREPARING, conditions=[Condition(
    type=PREPARED, status="True", reason="Prepared", last_transition_time="2026-11-28T10:00:00Z")])


def at_step(step: int, phase: Phase = Phase.RUNNING) -> RunStatus:
    return PREPARED_STATUS.model_copy(update={"phase": phase, "progress": Progress(step=step)})


def test_a_new_run_prepares_first() -> None:
    decision = decide(RUN, RunStatus(), Observed())
    assert (decision.phase, decision.prepare, decision.workloads) == (Phase.PREPARING, True, False)


def test_once_prepared_the_server_and_learner_start_and_it_runs_when_the_learner_does() -> None:
    starting = decide(RUN, RunStatus(phase=Phase.PREPARING), Observed(prepare=JobState.SUCCEEDED))
    assert (starting.phase, starting.reason, starting.workloads, starting.prepared) == (
        Phase.PREPARING, "StartingWorkloads", True, True)
    running = decide(RUN, PREPARED_STATUS, Observed(learner=JobState.RUNNING))  # prepare Job gone: condition holds
    assert (running.phase, running.workloads, running.prepare) == (Phase.RUNNING, True, False)


def test_evaluations_are_due_at_every_multiple_reached() -> None:
    assert due_evaluations(RUN, 45) == (20, 40)
    assert due_evaluations(RUN, 500) == (20, 40, 60, 80, 100)
    assert decide(RUN, at_step(45), Observed(learner=JobState.RUNNING)).evaluations == (20, 40)
    never = RUN.model_copy(update={"spec": RUN.spec.model_copy(update={
        "evaluation": RUN.spec.evaluation.model_copy(update={"every_steps": 0})})})
    assert due_evaluations(never, 100) == ()


def test_learner_success_leads_through_evaluating_to_succeeded() -> None:
    evaluating = decide(RUN, at_step(100), Observed(learner=JobState.SUCCEEDED))
    assert (evaluating.phase, evaluating.final, evaluating.workloads) == (Phase.EVALUATING, True, True)
    done = decide(RUN, at_step(100, Phase.EVALUATING), Observed(learner=JobState.SUCCEEDED, final=JobState.SUCCEEDED))
    assert (done.phase, done.remove_workloads, done.terminal) == (Phase.SUCCEEDED, True, True)


def test_failures_fail_the_run_with_a_reason_and_release_the_server() -> None:
    failed = decide(RUN, at_step(3), Observed(learner=JobState.FAILED, learner_failure="BackoffLimitExceeded: oom"))
    assert (failed.phase, failed.reason, failed.message, failed.remove_workloads) == (
        Phase.FAILED, "LearnerFailed", "BackoffLimitExceeded: oom", True)
    assert decide(RUN, RunStatus(), Observed(prepare=JobState.FAILED)).reason == "PrepareFailed"
    final = decide(RUN, at_step(100), Observed(learner=JobState.SUCCEEDED, final=JobState.FAILED))
    assert final.reason == "EvaluationFailed"


def test_a_finished_run_stays_finished_and_does_nothing() -> None:
    status = at_step(100, Phase.SUCCEEDED)
    decision = decide(RUN, status, Observed())
    assert decision.phase == Phase.SUCCEEDED
    assert not (decision.prepare or decision.workloads or decision.final or decision.remove_workloads)


def test_suspend_removes_workloads_once_and_resume_skips_preparation() -> None:
    suspended_run = RUN.model_copy(update={"spec": RUN.spec.model_copy(update={"suspend": True})})
    entering = decide(suspended_run, at_step(30), Observed(learner=JobState.RUNNING, evaluations={20: JobState.RUNNING}))
    assert (entering.phase, entering.remove_jobs, entering.remove_workloads) == (Phase.SUSPENDED, True, True)
    settled = decide(suspended_run, at_step(30, Phase.SUSPENDED), Observed())
    assert (settled.phase, settled.remove_jobs) == (Phase.SUSPENDED, False)
    resumed = decide(RUN, at_step(30, Phase.SUSPENDED), Observed())
    assert (resumed.phase, resumed.prepare, resumed.workloads) == (Phase.PREPARING, False, True)


def test_a_learner_pod_being_replaced_keeps_the_run_running() -> None:
    decision = decide(RUN, at_step(7), Observed(prepare=JobState.SUCCEEDED, learner=JobState.PENDING))
    assert (decision.phase, decision.reason) == (Phase.RUNNING, "LearnerRestarting") and decision.workloads
    first_start = decide(RUN, at_step(0, Phase.PREPARING), Observed(prepare=JobState.SUCCEEDED, learner=JobState.PENDING))
    assert first_start.phase == Phase.PREPARING


def test_a_stalled_learner_shows_why_in_the_runs_reason_until_it_moves_again() -> None:
    why = "stalled: no step completed for 61 s (learner.stallTimeoutSeconds 60)"
    stalled = PREPARED_STATUS.model_copy(update={"phase": Phase.RUNNING, "progress": Progress(step=7, stalled=why)})
    decision = decide(RUN, stalled, Observed(learner=JobState.RUNNING))
    assert (decision.phase, decision.reason, decision.message, decision.workloads) == (
        Phase.RUNNING, "LearnerStalled", why, True)
    moving = decide(RUN, at_step(8), Observed(learner=JobState.RUNNING))
    assert moving.reason == "Training"
