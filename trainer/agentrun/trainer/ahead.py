"""Rollouts sampled ahead of the learner, with bounded staleness (`rollout.maxStaleness`, k).

Step s samples from the adapter of step `sampling_version(s, k) = max(0, s - 1 - k)`. That version exists
as soon as step s - 1 - k is published, so while the learner trains step s the server can already sample
steps s + 1 .. s + k: with k = 0 the two alternate (today's on-policy loop), with k >= 1 they overlap and
each trains on samples at most k versions old. The version is a function of the step, like the step's
questions and seeds (agentrun.rollout.driver), so a resumed run draws exactly what an uninterrupted one
would: rollouts in flight when a run stops are discarded and drawn again on resume (docs/LEARNER.md
"Pipelined rollouts" has the maths of why the off-policy samples are safe to train on).

One worker thread runs the queued steps' rollouts in order (the server's own concurrency limit,
rollout.concurrency, bounds the requests of one step). Only the leading rank samples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from agentrun import storage
from agentrun.rollout.trajectory import Trajectory

Rollouts = Callable[[int, str], list[list[Trajectory]]]  # (step, model name) -> groups of trajectories


def sampling_version(step: int, max_staleness: int) -> int:
    """The adapter version (the training step that produced it; 0 is the base model) that samples `step`."""
    return max(0, step - 1 - max_staleness)


def version_name(version: int, base_name: str) -> str:
    """The name the server serves `version` under: the base model's, or the checkpoint's (step-000042)."""
    return base_name if version == 0 else storage.checkpoint_name(version)


@dataclass(frozen=True)
class SampledStep:
    """One step's rollouts as the learner receives them."""

    step: int
    version: int  # the adapter version that sampled every trajectory of the step
    groups: list[list[Trajectory]]
    rollout_seconds: float  # the rollouts' own wall time
    learner_wait_seconds: float  # how long the learner waited for them (all of rollout_seconds when k = 0)
    server_idle_seconds: float  # how long the sampler had nothing to sample before it started this step


class RolloutsAhead:
    def __init__(self, rollouts: Rollouts, base_name: str, max_staleness: int, last_step: int) -> None:
        self.rollouts, self.base_name = rollouts, base_name
        self.max_staleness, self.last_step = max_staleness, last_step
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollouts-ahead")
        self._queued: dict[int, Future[SampledStep]] = {}
        self._lock = threading.Lock()
        self._idle_since: float | None = None  # when the sampler last ran out of work

    def launch(self, next_step: int, newest_version: int) -> None:
        """Queue the rollouts of every step from `next_step` on whose sampling version is published
        (at most `newest_version`), up to the last step, unless they are queued already."""
        last = min(self.last_step, newest_version + 1 + self.max_staleness)
        for step in range(next_step, last + 1):
            if step not in self._queued:
                self._queued[step] = self._pool.submit(self._sample, step)

    def take(self, step: int, newest_version: int) -> SampledStep:
        """Step `step`'s rollouts, waiting for them if they are still being sampled (or not yet started)."""
        self.launch(step, newest_version)
        waited = time.perf_counter()
        sampled = self._queued.pop(step).result()
        return SampledStep(sampled.step, sampled.version, sampled.groups, sampled.rollout_seconds,
                           time.perf_counter() - waited, sampled.server_idle_seconds)

    def discard(self) -> None:
        """Drop every queued step (a failed step's successors were sampled from the same failing server);
        the next `take` draws them again, identically."""
        for future in self._queued.values():
            future.cancel()
        for future in self._queued.values():
            if not future.cancelled():
                future.exception()  # wait: the one that is running still holds the server's slots
        self._queued.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _sample(self, step: int) -> SampledStep:
        started = time.perf_counter()
        with self._lock:
            idle = started - self._idle_since if self._idle_since is not None else 0.0
        version = sampling_version(step, self.max_staleness)
        name = version_name(version, self.base_name)
        try:
            groups = [[t.model_copy(update={"policy_version": version}) for t in group]
                      for group in self.rollouts(step, name)]
        finally:
            with self._lock:
                self._idle_since = time.perf_counter()
        return SampledStep(step, version, groups, time.perf_counter() - started, 0.0, idle)
