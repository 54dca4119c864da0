"""Training samples from the server's token ids: turns merged when the ids extend, split otherwise."""

from __future__ import annotations

import pytest

from agentrun.rollout.trajectory import Timings, Trajectory, Turn
from agentrun.trainer.samples import SampleError, build_samples, trajectory_samples


def turn(prompt: list[int], generated: list[int], logprobs: list[float] | None = None) -> Turn:
    return Turn(prompt_messages=1, content=None, finish_reason="stop", model="step-000001", latency_seconds=0.1,
                prompt_token_ids=prompt, token_ids=generated,
                logprobs=logprobs if logprobs is not None else [-0.5] * len(generated))


def trajectory(*turns: Turn) -> Trajectory:
    return Trajectory(scenario_id=7, question="q", model="step-000001", turns=list(turns), timings=Timings(wall_seconds=1))


def test_turns_whose_prompt_extends_the_last_sequence_are_merged() -> None:
    first = turn([1, 2, 3], [4, 5], [-0.1, -0.2])
    second = turn([1, 2, 3, 4, 5, 6, 7], [8], [-0.3])
    samples, joins = trajectory_samples(trajectory(first, second), advantage=0.75)
    assert joins == 1 and len(samples) == 1
    sample = samples[0]
    assert sample.ids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sample.trained == [False, False, False, True, True, False, False, True]
    assert sample.server_logprobs == [0.0, 0.0, 0.0, -0.1, -0.2, 0.0, 0.0, -0.3]
    assert sample.advantage == 0.75


def test_a_rewritten_history_starts_a_new_sample() -> None:
    first = turn([1, 2, 3], [4, 5])
    second = turn([1, 2, 3, 4, 9, 6], [8])  # the template re-rendered the reply differently
    samples, joins = trajectory_samples(trajectory(first, second), advantage=-1.0)
    assert joins == 0
    assert [s.ids for s in samples] == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 9, 6, 8]]
    assert [s.trained for s in samples] == [[False] * 3 + [True] * 2, [False] * 6 + [True]]


def test_merge_rate_counts_joins_over_possible_joins() -> None:
    merged = trajectory(turn([1], [2]), turn([1, 2, 3], [4]), turn([9], [5]))
    single = trajectory(turn([1], [2]))
    built = build_samples([merged, single], [1.0, -1.0])
    assert (built.turns, built.joins, built.possible_joins) == (4, 1, 2)
    assert built.merge_rate == 0.5
    assert [s.advantage for s in built.samples] == [1.0, 1.0, -1.0]


def test_turns_without_token_ids_cannot_be_trained() -> None:
    bare = Turn(prompt_messages=1, content="x", finish_reason="stop", model="m", latency_seconds=0.1)
    with pytest.raises(SampleError, match="return_token_ids"):
        trajectory_samples(trajectory(bare), 0.0)
    with pytest.raises(SampleError, match="logprobs"):
        trajectory_samples(trajectory(turn([1], [2, 3], [-0.1])), 0.0)
