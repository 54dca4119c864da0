"""The spec's reward weights reach every place an episode is scored: the training rollout driver and the
evaluator (both through the rollout client), over real HTTP against the scripted oracle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentrun.environment.judge import DeterministicJudge
from agentrun.evaluator import benchmark
from agentrun.mailbox.records import Scenario
from agentrun.rollout.driver import RolloutDriver
from agentrun.scripted.serving import ScriptedServer
from agentrun.spec.models import EnvironmentSpec, RewardSpec, RolloutSpec
from tests.rollout.conftest import MODEL

# A correct answer earns exactly 3 whatever its sources and turns, so the totals say which weights scored it.
FLAT = RewardSpec(correct_answer=3.0, correct_sources_bonus=0.0, few_sources_bonus=0.0, early_finish_bonus=0.0)


def test_training_rollouts_and_evaluations_are_scored_with_the_specs_weights(
    oracle_server: ScriptedServer, dataset: Path, scenarios: list[Scenario]
) -> None:
    driver = RolloutDriver(oracle_server.base_url, dataset, scenarios[:4], FLAT, per_step=2, group_size=2, seed=0,
                           rollout=RolloutSpec(concurrency=4), environment=EnvironmentSpec())
    trained = [t for group in driver(1, MODEL) for t in group]
    assert [(t.reward.outcome, t.reward.total) for t in trained if t.reward] == [("correct", 3.0)] * 4

    result = asyncio.run(benchmark.evaluate(oracle_server.base_url, MODEL, dataset, DeterministicJudge(),
                                            scenarios[:2], reward=FLAT))
    assert [t.reward.total for t in result.trajectories if t.reward] == [3.0, 3.0]
    assert result.summary.mean_reward == 3.0
