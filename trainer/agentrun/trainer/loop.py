"""The GRPO training loop: sample groups from the current adapter, score, update, checkpoint, publish.

Per step:
    groups   = rollouts(step, current model name)       # the rollout driver, or any source of trajectories
    check    every turn was served by that name          # silent base-model sampling fails the step
    drop     failed trajectories (within a tolerance) and groups with equal rewards
    update   learner.update(samples with group advantages): epochs x minibatches optimizer steps
    save     checkpoints/step-N (adapter + trainer state), atomically
    publish  make the server use step-N; it is the current model name from now on
The loop resumes from the newest complete checkpoint: its adapter, optimizer and RNG, and its step (the
rollout driver derives each step's scenarios and seeds from the step, so a resumed run replays exactly).
With several learner processes (DeepSpeed), rank 0 samples, publishes and reports; every rank trains.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from peft import PeftModel

from agentrun import checkpoint_files, stats, storage
from agentrun.rollout.client import check_served_by
from agentrun.rollout.trajectory import Trajectory, write_jsonl
from agentrun.trainer import checkpoints, grpo
from agentrun.trainer.learner import Learner
from agentrun.trainer.samples import build_samples

Rollouts = Callable[[int, str], list[list[Trajectory]]]  # (step, model name) -> groups of trajectories
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
        self.rollouts = rollouts
        self.publish = publish
        self.settings = settings
        self.reporters = list(reporters)
        self.trajectories_file = trajectories_file  # step -> where its trajectories are kept for inspection
        self.step = 0
        self.model_name = base_name  # step 0 samples from the base model (the adapter starts as a no-op)
        self.protected: set[str] = set()  # checkpoint names pruning spares (the runner's best by validation)

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
        records = []
        while self.step < self.settings.steps:
            records.append(self.run_step())
        return records

    def run_step(self) -> StepRecord:
        step = self.step + 1
        engine = self.learner.engine
        leader = engine.rank == 0
        started = time.perf_counter()
        groups = engine.broadcast(self.rollouts(step, self.model_name) if leader else None)
        rollout_seconds = time.perf_counter() - started
        flat = [t for group in groups for t in group]
        if self.trajectories_file is not None and leader:
            write_jsonl(self.trajectories_file(step), flat)
        ok = [t for t in flat if not t.failed]
        check_served_by(ok, self.model_name)
        failed = len(flat) - len(ok)
        if failed > self.settings.max_failed_fraction * len(flat):
            reasons = sorted({t.exception or "" for t in flat if t.failed})[:3]
            failure = ServerUnreachable if set(error_kinds(flat)) <= NO_ANSWER else StepFailed
            raise failure(f"step {step}: {failed} of {len(flat)} trajectories failed (tolerated: "
                          f"{self.settings.max_failed_fraction:.0%}); first errors: {reasons}")

        kept, advantages, groups_used, zero_variance = [], [], 0, 0
        for group in groups:
            usable = [t for t in group if not t.failed and t.reward is not None]
            if len(usable) < 2:
                continue
            groups_used += 1
            rewards = torch.tensor([[t.reward.total for t in usable]])  # type: ignore[union-attr]
            if not bool(grpo.informative_groups(rewards)):
                zero_variance += 1
                continue
            kept += usable
            advantages += grpo.group_advantages(rewards, self.settings.scale_rewards_by_std)[0].tolist()
        built = build_samples(kept, advantages)
        train_started = time.perf_counter()
        metrics = self.learner.update(built.samples) if built.samples else None
        train_seconds = time.perf_counter() - train_started

        all_rewards = [t.reward.total for t in ok if t.reward is not None]
        durations = [t.timings.wall_seconds for t in flat] or [0.0]
        record = StepRecord(
            step=step, model=self.model_name,
            reward_mean=statistics.fmean(all_rewards) if all_rewards else 0.0,
            reward_std=statistics.pstdev(all_rewards) if all_rewards else 0.0,
            answer_accuracy=sum(bool(t.answer_correct) for t in ok) / len(ok) if ok else 0.0,
            trajectories=len(flat), failed_trajectories=failed,
            zero_variance_groups=zero_variance / groups_used if groups_used else 0.0,
            merge_rate=built.merge_rate, loss=metrics.loss if metrics else 0.0,
            grad_norm=metrics.grad_norm if metrics else 0.0, kl=metrics.kl if metrics else 0.0,
            trained_tokens=metrics.trained_tokens if metrics else 0,
            tokens_per_second=metrics.tokens_per_second if metrics else 0.0, mfu=metrics.mfu if metrics else 0.0,
            rollout_seconds=rollout_seconds, train_seconds=train_seconds, save_seconds=0.0,
            trajectory_seconds_p50=stats.percentile(durations, 50),
            trajectory_seconds_p90=stats.percentile(durations, 90),
            trajectory_seconds_max=max(durations), rollout_errors=error_kinds(flat),
        )
        save_started = time.perf_counter()
        directory = self.checkpoints_dir / storage.checkpoint_name(step)
        state = checkpoints.TrainerState(step=step, torch_rng=torch.get_rng_state(), record=asdict(record))
        checkpoints.save(self.learner.model, self.base_name, directory, state, engine)  # type: ignore[arg-type]
        self.model_name = directory.name
        self.step = step
        if leader:
            self.publish(directory.name, directory)
            checkpoints.prune(self.checkpoints_dir, self.settings.keep_last, self.settings.checkpoint_every,
                              keep=self.protected)
        record = StepRecord(**{**asdict(record), "save_seconds": time.perf_counter() - save_started})
        if leader:
            for reporter in self.reporters:
                reporter.step_done(record)
        return record
