"""The external tools the tests use: helm, prometheus, promtool and skaffold.

``hack/tools/build.sh`` (``make tools``; ``make test`` runs it first) builds or fetches them once, at the
versions pinned in ``hack/tools/versions.env``, into a cache directory outside the repository keyed by
those versions (docs/control-plane.md, "Other test tools"). Nothing here builds: a missing tool is an
error that says to run ``make tools``.

This is the package ``tests.tools`` (not a module ``tests/tools.py``): its smoke tests live beside it in
``tests/tools/test_tools.py``, and with pytest's ``--import-mode=importlib`` a folder ``tests/tools/``
shadows a module ``tests/tools.py`` (``ImportError: cannot import name ... from 'tests.tools'``).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "tools" / "build.sh"
VERSIONS_FILE = REPO / "hack" / "tools" / "versions.env"
TOOLS = ("helm", "prometheus", "promtool", "skaffold")


class ToolMissingError(RuntimeError):
    """A pinned tool is not in the cache: ``make tools`` builds it."""


@functools.cache
def bin_dir() -> Path:
    """The cache directory build.sh puts (or has put) the binaries of the pinned versions in."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def tool(name: str) -> Path:
    """Path of the cached binary ``name`` (one of `TOOLS`); raises `ToolMissingError` when not built."""
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}: one of {', '.join(TOOLS)}")
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ToolMissingError(
            f"{name} is not built ({path} missing): run `make tools` (= bash {BUILD_SCRIPT.relative_to(REPO)})"
        )
    return path


@functools.cache
def pinned_versions() -> dict[str, str]:
    """``hack/tools/versions.env`` as a dict (HELM_VERSION, PROMETHEUS_DEB_VERSION, SKAFFOLD_VERSION, ...)."""
    versions = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip().strip("'\"")
    return versions
