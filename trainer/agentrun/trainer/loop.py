"""The GRPO training loop: sample groups, score, update, checkpoint, publish, report.

One step, as `TrainingLoop.run_step` reads:
    rollouts  the step's groups, sampled by the adapter of step s - 1 - k (agentrun.trainer.ahead;
              k = rollout.maxStaleness, 0: the newest), every turn checked to be served by it
    scores    failed trajectories dropped (within a tolerance), group advantages, equal-reward groups dropped
    samples   token ids, trained masks and the server's logprobs of each kept trajectory
    update    learner.update: epochs x minibatches optimizer steps (the maths: agentrun.trainer.grpo)
    save      checkpoints/step-N (adapter + trainer state), atomically
    publish   the server serves step-N; rollouts of the steps that sample from it start now
    report    the step's record to the progress bar, metrics, steps.jsonl or the operator's status
The loop resumes from the newest complete checkpoint: its adapter, optimizer and RNG, and its step (each
step's questions, seeds and sampling version are functions of the step, so a resumed run replays exactly).
With several learner processes (DeepSpeed), rank 0 samples, publishes and reports; every rank trains.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from peft import PeftModel

from agentrun import checkpoint_files, stats, storage
from agentrun.rollout.client import check_served_by
from agentrun.rollout.trajectory import Trajectory, write_jsonl
from agentrun.trainer import checkpoints, grpo
from agentrun.trainer.ahead import Rollouts, RolloutsAhead, SampledStep, version_name
from agentrun.trainer.learner import Learner, StepMetrics
from agentrun.trainer.samples import build_samples

Publish = Callable[[str, Path], None]  # (adapter name, directory): make the server serve it under that name


def error_kinds(trajectories: Sequence[Trajectory]) -> dict[str, int]:
    """Failed trajectories counted by the type of the exception that stopped them (`"TimeoutError: ..."`)."""
    return dict(Counter((t.exception or "").split(":", 1)[0] or "Unknown" for t in trajectories if t.failed))


class StepFailed(RuntimeError):
    """Too many trajectories of a step failed for its update to be trusted."""


# The rollout client's errors when no answer came at all (agentrun.rollout.chat): the server is away.
NO_ANSWER = frozenset({"TransportError", "RequestTimeout"})


class ServerUnreachable(StepFailed):
    """A step failed only because the server did not answer (a restarting or rescheduled vLLM pod). Nothing
    changed: a step's rollouts are a function of its number, so the same step can run again once the server
    is back."""


@dataclass(frozen=True)
class StepRecord:
    step: int
    model: str  # the adapter the step's rollouts were sampled from
    reward_mean: float
    reward_std: float
    answer_accuracy: float  # fraction of trajectories judged correct
    trajectories: int
    failed_trajectories: int
    zero_variance_groups: float  # fraction of groups dropped for carrying no signal
    merge_rate: float
    loss: float
    grad_norm: float
    kl: float
    trained_tokens: int
    tokens_per_second: float
    mfu: float  # 0 where the device's peak is unknown (CPUs)
    rollout_seconds: float
    train_seconds: float
    save_seconds: float
    trajectory_seconds_p50: float = 0.0  # wall time of one trajectory, slot to reward
    trajectory_seconds_p90: float = 0.0
    trajectory_seconds_max: float = 0.0
    rollout_errors: dict[str, int] = field(default_factory=dict)  # failed trajectories by exception type
    staleness: int = 0  # versions between the sampling adapter and the one this step updated
    learner_wait_seconds: float = 0.0  # the learner idle, waiting for this step's rollouts
    server_idle_seconds: float = 0.0  # the sampler idle before it started this step's rollouts

    def as_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items() if isinstance(v, int | float)}


class StepReporter(Protocol):
    """Where progress goes: the local runner's progress bar and metrics, the operator's status later."""

    def step_done(self, record: StepRecord) -> None: ...


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    scale_rewards_by_std: bool = True
    max_failed_fraction: float = 0.25  # of a step's trajectories; more fails the step
    keep_last: int = 2  # newest checkpoints kept besides those at multiples of checkpoint_every
    checkpoint_every: int = 10
    max_staleness: int = 0  # rollout.maxStaleness: versions the sampling adapter may lag (agentrun.trainer.ahead)


@dataclass(frozen=True)
class Scored:
    """A step's trajectories that carry a learning signal, each with its group advantage."""

    trajectories: list[Trajectory]
    advantages: list[float]
    groups_used: int  # groups with at least two usable trajectories
    zero_variance: int  # of those, groups whose trajectories all got the same reward (no signal)


def score_groups(groups: Sequence[Sequence[Trajectory]], scale_by_std: bool) -> Scored:
    """Group advantages (grpo.group_advantages) of the usable trajectories, groups without signal dropped."""
    kept: list[Trajectory] = []
    advantages: list[float] = []
    used = zero_variance = 0
    for group in groups:
        usable = [t for t in group if not t.failed and t.reward is not None]
        if len(usable) < 2:
            continue
        used += 1
        rewards = torch.tensor([[t.reward.total for t in usable]])  # type: ignore[union-attr]  # (1, G)
        if not bool(grpo.informative_groups(rewards)):
            zero_variance += 1
            continue
        kept += usable
        advantages += grpo.group_advantages(rewards, scale_by_std)[0].tolist()
    return Scored(kept, advantages, used, zero_variance)


def check_rollouts(sampled: SampledStep, base_name: str, max_failed_fraction: float) -> None:
    """Every turn was served by the step's sampling adapter (ServedByError otherwise), and few enough
    trajectories failed (StepFailed, or ServerUnreachable when no request was answered at all)."""
    flat = [t for group in sampled.groups for t in group]
    ok = [t for t in flat if not t.failed]
    check_served_by(ok, version_name(sampled.version, base_name))
    failed = len(flat) - len(ok)
    if failed > max_failed_fraction * len(flat):
        reasons = sorted({t.exception or "" for t in flat if t.failed})[:3]
        failure = ServerUnreachable if set(error_kinds(flat)) <= NO_ANSWER else StepFailed
        raise failure(f"step {sampled.step}: {failed} of {len(flat)} trajectories failed (tolerated: "
                      f"{max_failed_fraction:.0%}); first errors: {reasons}")


def step_record(sampled: SampledStep, scored: Scored, merge_rate: float, metrics: StepMetrics | None,
                train_seconds: float, base_name: str, staleness: int) -> StepRecord:
    """What a step did, for its reporters (save_seconds is filled in once the checkpoint is written)."""
    flat = [t for group in sampled.groups for t in group]
    ok = [t for t in flat if not t.failed]
    rewards = [t.reward.total for t in ok if t.reward is not None]
    durations = [t.timings.wall_seconds for t in flat] or [0.0]
    return StepRecord(
        step=sampled.step, model=version_name(sampled.version, base_name),
        reward_mean=statistics.fmean(rewards) if rewards else 0.0,
        reward_std=statistics.pstdev(rewards) if rewards else 0.0,
        answer_accuracy=sum(bool(t.answer_correct) for t in ok) / len(ok) if ok else 0.0,
        trajectories=len(flat), failed_trajectories=len(flat) - len(ok),
        zero_variance_groups=scored.zero_variance / scored.groups_used if scored.groups_used else 0.0,
        merge_rate=merge_rate, loss=metrics.loss if metrics else 0.0,
        grad_norm=metrics.grad_norm if metrics else 0.0, kl=metrics.kl if metrics else 0.0,
        trained_tokens=metrics.trained_tokens if metrics else 0,
        tokens_per_second=metrics.tokens_per_second if metrics else 0.0, mfu=metrics.mfu if metrics else 0.0,
        rollout_seconds=sampled.rollout_seconds, train_seconds=train_seconds, save_seconds=0.0,
        trajectory_seconds_p50=stats.percentile(durations, 50),
        trajectory_seconds_p90=stats.percentile(durations, 90),
        trajectory_seconds_max=max(durations), rollout_errors=error_kinds(flat), staleness=staleness,
        learner_wait_seconds=sampled.learner_wait_seconds, server_idle_seconds=sampled.server_idle_seconds,
    )


class TrainingLoop:
    def __init__(
        self, learner: Learner, base_name: str, checkpoints_dir: Path, rollouts: Rollouts, publish: Publish,
        settings: LoopSettings, reporters: Sequence[StepReporter] = (),
        trajectories_file: Callable[[int], Path] | None = None,
    ) -> None:
        if not isinstance(learner.model, PeftModel):
            raise TypeError("the learner trains a LoRA adapter: wrap the model with peft first")
        self.learner = learner
        self.base_name = base_name
        self.checkpoints_dir = checkpoints_dir
        self.publish = publish
        self.settings = settings
        self.reporters = list(reporters)
        self.trajectories_file = trajectories_file  # step -> where its trajectories are kept for inspection
        self.step = 0
        self.model_name = base_name  # the newest published adapter; step 0's is the base model
        self.protected: set[str] = set()  # checkpoint names pruning spares (the runner's best by validation)
        # Rollouts still sampling from the k versions before the newest need their checkpoints on disk.
        self.keep_last = max(settings.keep_last, settings.max_staleness + 1)
        self.ahead = RolloutsAhead(rollouts, base_name, settings.max_staleness, settings.steps) \
            if learner.engine.rank == 0 else None

    def resume(self) -> int:
        """Continue from the newest intact checkpoint, if any; returns the step it reached."""
        engine = self.learner.engine
        if engine.rank == 0:
            checkpoint_files.remove_leftovers(self.checkpoints_dir)
        directory = engine.broadcast(checkpoint_files.latest(self.checkpoints_dir))
        if directory is None:
            return 0
        state = checkpoints.restore(directory, engine)
        torch.set_rng_state(state.torch_rng)
        self.step = state.step
        if engine.rank == 0:
            self.publish(directory.name, directory)
            # A crash between saving a step and reporting it must not lose its report: the resumed step is
            # reported again (StepLog keeps one line per step).
            for reporter in self.reporters:
                reporter.step_done(StepRecord(**state.record))
        self.model_name = directory.name
        return self.step

    def run(self) -> list[StepRecord]:
        try:
            return [self.run_step() for _ in range(self.step, self.settings.steps)]
        finally:
            self.close()

    def close(self) -> None:
        """Stop sampling ahead (rollouts in flight are drawn again by a resumed run)."""
        if self.ahead is not None:
            self.ahead.close()

    def run_step(self) -> StepRecord:
        step, engine = self.step + 1, self.learner.engine
        leader = engine.rank == 0
        sampled: SampledStep = engine.broadcast(self.ahead.take(step, self.step) if self.ahead else None)
        if leader and self.trajectories_file is not None:
            write_jsonl(self.trajectories_file(step), [t for group in sampled.groups for t in group])
        try:
            check_rollouts(sampled, self.base_name, self.settings.max_failed_fraction)
        except Exception:
            if self.ahead is not None:
                self.ahead.discard()  # sampled from the same failing server: drawn again with this step
            raise
        scored = score_groups(sampled.groups, self.settings.scale_rewards_by_std)
        built = build_samples(scored.trajectories, scored.advantages)
        train_started = time.perf_counter()
        metrics = self.learner.update(built.samples) if built.samples else None
        record = step_record(sampled, scored, built.merge_rate, metrics, time.perf_counter() - train_started,
                             self.base_name, staleness=self.step - sampled.version)
        save_started = time.perf_counter()
        directory = self.save(step, record)
        if leader:
            self.publish(directory.name, directory)
            if self.ahead is not None:
                self.ahead.launch(step + 1, newest_version=step)
        record = StepRecord(**{**asdict(record), "save_seconds": time.perf_counter() - save_started})
        if leader:
            for reporter in self.reporters:
                reporter.step_done(record)
        return record

    def save(self, step: int, record: StepRecord) -> Path:
        """checkpoints/step-N with the trainer state to resume from; older checkpoints pruned."""
        directory = self.checkpoints_dir / storage.checkpoint_name(step)
        state = checkpoints.TrainerState(step=step, torch_rng=torch.get_rng_state(), record=asdict(record))
        checkpoints.save(self.learner.model, self.base_name, directory, state, self.learner.engine)  # type: ignore[arg-type]
        self.model_name, self.step = directory.name, step
        if self.learner.engine.rank == 0:
            checkpoints.prune(self.checkpoints_dir, self.keep_last, self.settings.checkpoint_every,
                              keep=self.protected)
        return directory
