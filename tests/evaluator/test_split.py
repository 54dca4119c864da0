"""The train split's one cut: validation is the last `evaluation.limit` train questions, a run learns
from the rest, and the two halves cover the train split without overlapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentrun.evaluator import benchmark


def test_the_halves_partition_the_train_split_at_one_cut(dataset: Path) -> None:
    train = benchmark.select_scenarios(dataset, "train", 10**9)
    split = benchmark.split_train(dataset, 10)
    assert [s.id for s in split.training + split.validation] == [s.id for s in train]
    assert split.validation == train[-10:] == benchmark.validation_scenarios(dataset, 10)
    assert split.training == benchmark.training_scenarios(dataset, 10)


def test_a_hold_out_that_leaves_nothing_to_learn_from_is_an_error(dataset: Path) -> None:
    train = benchmark.select_scenarios(dataset, "train", 10**9)
    with pytest.raises(benchmark.EvaluationError, match="evaluation.limit"):
        benchmark.validation_scenarios(dataset, len(train))
