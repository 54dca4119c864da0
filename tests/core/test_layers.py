"""The architecture the folder tree promises: the shared core depends on no runtime part, torch stays
out of the core, and nothing is importable as a top-level `operator` (it would shadow the stdlib)."""

from __future__ import annotations

import ast
import importlib.util
import operator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core" / "agentrun"
COMPOSITION_ROOT = CORE / "cli" / "main.py"  # gathers every part's commands; the one allowed exception
PARTS = ("agentrun.operator", "agentrun.trainer", "agentrun.evaluator", "agentrun.serving", "agentrun.models")
HEAVY = ("torch", "transformers", "peft", "deepspeed", "kopf", "kubernetes")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_modules() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if p != COMPOSITION_ROOT]


def test_core_imports_no_runtime_part() -> None:
    offenders = {
        f"{path.relative_to(REPO)}: {name}"
        for path in core_modules()
        for name in imported_modules(path)
        if name.startswith(PARTS)
    }
    assert offenders == set()


def test_core_imports_no_heavy_framework() -> None:
    offenders = {
        f"{path.relative_to(REPO)}: {name}"
        for path in core_modules()
        for name in imported_modules(path)
        if name.split(".")[0] in HEAVY
    }
    assert offenders == set()


def test_no_source_root_holds_an_agentrun_init() -> None:
    """`agentrun` is a namespace over the source roots; an __init__.py in one root would hide the others."""
    roots = ("core", "operator", "trainer", "evaluator")
    assert [r for r in roots if (REPO / r / "agentrun" / "__init__.py").exists()] == []


def test_operator_is_the_standard_library() -> None:
    spec = importlib.util.find_spec("operator")
    assert spec is not None and spec.origin is not None and "site-packages" not in spec.origin
    assert Path(operator.__file__).parent != REPO / "operator"
    assert importlib.util.find_spec("agentrun.operator") is not None


def test_the_model_server_does_not_import_the_scripted_test_double() -> None:
    """`agentrun.wire` holds the wire format; the scripted server is a test double, not a library."""
    serving = REPO / "trainer" / "agentrun" / "serving"
    offenders = {f"{path.relative_to(REPO)}: {name}" for path in serving.rglob("*.py")
                 for name in imported_modules(path) if name.startswith("agentrun.scripted")}
    assert offenders == set()
