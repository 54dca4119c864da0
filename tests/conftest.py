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


def _tool_fixture(name: str, origin: str):  # noqa: ANN202
    def fixture() -> Path:
        from tests.tools import tool

        return tool(name)

    fixture.__doc__ = f"The pinned {name} binary ({origin}); a missing one is an error naming `make tools`."
    return pytest.fixture(scope="session", name=name)(fixture)


# External tools (hack/tools/build.sh, `make tools`): the cached binaries' paths.
helm = _tool_fixture("helm", "built from the Go module proxy")
prometheus = _tool_fixture("prometheus", "from Debian's prometheus package")
promtool = _tool_fixture("promtool", "from Debian's prometheus package")
skaffold = _tool_fixture("skaffold", "built from the Go module proxy")
