"""Fixtures for the learner's tests; the toys themselves live in `toys` (worker processes use them too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch")

from transformers import PreTrainedModel  # noqa: E402

from .toys import bimodal_policy as make_bimodal_policy  # noqa: E402


@pytest.fixture
def bimodal_policy(tiny_dir: Path) -> Callable[[], PreTrainedModel]:
    """A factory: each call returns a fresh, identical copy of the toy policy."""
    return lambda: make_bimodal_policy(tiny_dir)


@pytest.fixture(scope="session")
def policy_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy policy saved as a model directory, for learner processes started by a test."""
    directory = tmp_path_factory.mktemp("policy")
    make_bimodal_policy(tiny_dir).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (directory / name).write_bytes((tiny_dir / name).read_bytes())
    return directory
