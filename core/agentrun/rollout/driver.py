"""The rollout side of a training step: which questions, how many samples, from which adapter.

Step k's questions are the k-th slice of a seeded permutation of the training scenarios (reshuffled
each epoch), and trajectory j of step k is sampled with seed (seed, k, j): the step number is the whole
data cursor, so a resumed run draws exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from random import Random

from agentrun.environment import judge as judges
from agentrun.mailbox import schema
from agentrun.mailbox.queries import Mailbox
from agentrun.mailbox.records import Scenario
from agentrun.rollout.client import RolloutClient
from agentrun.rollout.trajectory import Trajectory
from agentrun.spec.models import EnvironmentSpec, RewardSpec, RolloutSpec

SEEDS_PER_STEP = 100_000  # room for every trajectory of a step between two steps' seed ranges


def step_scenarios(pool: Sequence[Scenario], per_step: int, step: int, seed: int) -> list[Scenario]:
    """The scenarios of step `step` (1-based): consecutive slices of a per-epoch seeded shuffle."""
    chosen: list[Scenario] = []
    position = (step - 1) * per_step
    while len(chosen) < per_step:
        epoch, offset = divmod(position, len(pool))
        order = list(pool)
        Random(seed * 1_000_003 + epoch).shuffle(order)
        take = order[offset : offset + per_step - len(chosen)]
        chosen += take
        position += len(take)
    return chosen


class RolloutDriver:
    """Callable as the training loop's `rollouts(step, model_name)`."""

    def __init__(
        self, endpoint: str, dataset_dir: Path, pool: Sequence[Scenario], reward: RewardSpec, *, per_step: int,
        group_size: int, seed: int, rollout: RolloutSpec, environment: EnvironmentSpec, progress: bool = False,
    ) -> None:
        self.endpoint, self.dataset_dir, self.pool, self.reward = endpoint, dataset_dir, list(pool), reward
        self.per_step, self.group_size, self.seed = per_step, group_size, seed
        self.rollout, self.environment, self.progress = rollout, environment, progress

    def __call__(self, step: int, model_name: str) -> list[list[Trajectory]]:
        return asyncio.run(self.sample(step, model_name))

    async def sample(self, step: int, model_name: str) -> list[list[Trajectory]]:
        scenarios = step_scenarios(self.pool, self.per_step, step, self.seed)
        judge = judges.make_judge(self.reward.judge)  # per step: an LLM judge's HTTP client belongs to this loop
        try:
            with Mailbox(self.dataset_dir / schema.EMAILS_DB) as mailbox:
                async with RolloutClient(self.endpoint, self.rollout, self.environment, mailbox, judge,
                                         reward=self.reward) as client:
                    return await client.run_groups(
                        scenarios, model_name, self.group_size, temperature=self.rollout.temperature,
                        seed=(self.seed * 10_000 + step) * SEEDS_PER_STEP, progress=self.progress,
                    )
        finally:
            if isinstance(judge, judges.LLMJudge):
                await judge.aclose()
