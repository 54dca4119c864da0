"""The tiny model, built once per session (~3 s): tokenizer, chat template and random weights."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from agentrun.models import tiny

    return tiny.build_tiny(tmp_path_factory.mktemp("models") / "tiny", seed=0)
