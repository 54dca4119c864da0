"""Comparing two evaluations of the same questions: paired differences against hand-computed values."""

from __future__ import annotations

import math

import pytest

from agentrun.evaluator import compare


def test_paired_difference_and_its_standard_error_by_hand() -> None:
    # differences 1, 0, 1, 0: mean 0.5, sample variance 1/3, standard error sqrt(1/3 / 4) = 0.2887
    result = compare.paired([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert result.mean == 0.5 and result.questions == 4
    assert result.standard_error == pytest.approx(math.sqrt(1 / 12))
    assert result.z == pytest.approx(0.5 / math.sqrt(1 / 12))
    assert compare.paired([1.0, 1.0], [1.0, 1.0]).z == 0.0  # nothing moved
    assert compare.paired([0.0, 0.0], [1.0, 1.0]).z == math.inf  # every question moved alike
    with pytest.raises(ValueError):
        compare.paired([0.0], [0.0, 1.0])  # not the same questions


def test_the_question_to_read_is_the_first_turned_right() -> None:
    def rows(*correct: bool | None) -> list[dict[str, object]]:
        return [{"scenario_id": 10 + i, "answer_correct": c, "reward": None if c is None else float(bool(c))}
                for i, c in enumerate(correct)]

    before, after = rows(True, False, None, False), rows(False, False, True, True)
    assert compare.turned_right(before, after) == 12
    assert compare.turned_right(after, before) == 10
    assert compare.turned_right(before, before) is None
    assert compare.correct(after) == [0.0, 0.0, 1.0, 1.0]
    assert compare.rewards(before) == [1.0, 0.0, -2.0, 0.0]  # a failed question counts as the worst reward
