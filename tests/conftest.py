"""Fixtures shared across test folders."""

from __future__ import annotations

import os
from pathlib import Path

# No model hub is reachable from development or CI machines: fail fast on a hub id instead of retrying
# connections (set before anything imports huggingface_hub, which reads it once).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from agentrun.mailbox import build


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (1,000 emails, seed 0): emails.db + scenarios.parquet, built once."""
    out = tmp_path_factory.mktemp("dataset")
    build.build("synthetic", out, seed=0, emails=1000, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model (tokenizer, chat template, random weights), built once per session (~3 s)."""
    pytest.importorskip("transformers")
    from agentrun.models import tiny

    return tiny.build_tiny(tmp_path_factory.mktemp("models") / "tiny", seed=0)


# External tools (hack/tools/build.sh, `make tools`): the cached binaries' paths; a missing one is an error
# naming `make tools`.
@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary (built from the Go module proxy)."""
    from tests.tools import tool

    return tool("helm")


@pytest.fixture(scope="session")
def prometheus() -> Path:
    """The pinned prometheus server binary (from Debian's `prometheus` package)."""
    from tests.tools import tool

    return tool("prometheus")


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The pinned promtool binary (from Debian's `prometheus` package)."""
    from tests.tools import tool

    return tool("promtool")


@pytest.fixture(scope="session")
def skaffold() -> Path:
    """The pinned skaffold binary (built from the Go module proxy)."""
    from tests.tools import tool

    return tool("skaffold")
