"""Statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from agentrun import stats


def test_percentile_interpolates_between_ranks() -> None:
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert stats.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert stats.percentile([7.0], 95) == 7.0
    assert math.isnan(stats.percentile([], 50))
