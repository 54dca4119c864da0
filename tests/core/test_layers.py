"""The architecture the folder tree promises: core <- environment/rollout <- trainer/evaluator <-
runner/workloads/operator, every import pointing down; torch stays out of the core, test infrastructure
out of what ships, and nothing is importable as a top-level `operator` (it would shadow the stdlib)."""

from __future__ import annotations

import ast
import importlib.util
import operator
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core" / "agentrun"
TRAINER = REPO / "trainer" / "agentrun"
COMPOSITION_ROOT = CORE / "cli" / "main.py"  # gathers every part's commands; the one allowed exception
PARTS = ("agentrun.operator", "agentrun.trainer", "agentrun.evaluator", "agentrun.serving", "agentrun.models")
HEAVY = ("torch", "transformers", "peft", "deepspeed", "kopf", "kubernetes")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it; `from a import b` counts as `a` and `a.b`, so that
    `from agentrun import trainer` is seen as an import of agentrun.trainer."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(paths: Iterable[Path], *packages: str) -> set[str]:
    """`file: module` for every import in `paths` of one of `packages` or a module inside one."""
    return {f"{path.relative_to(REPO)}: {name}" for path in paths for name in imported_modules(path)
            if any(name == package or name.startswith(f"{package}.") for package in packages)}


def sources(*directories: Path) -> list[Path]:
    return [path for directory in directories for path in directory.rglob("*.py")]


def core_modules() -> list[Path]:
    return [p for p in sources(CORE) if p != COMPOSITION_ROOT]


def test_core_imports_no_runtime_part() -> None:
    assert offenders(core_modules(), *PARTS) == set()


def test_core_imports_no_heavy_framework() -> None:
    assert offenders(core_modules(), *HEAVY) == set()


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
    assert offenders(sources(TRAINER / "serving"), "agentrun.scripted") == set()


def test_models_do_not_import_the_trainer() -> None:
    """Loading and building models sits below training: the trainer uses models, never the reverse
    (what both need, like the oracle's demonstrations, lives in the core)."""
    assert offenders(sources(TRAINER / "models"), "agentrun.trainer") == set()


def test_the_trainer_does_not_import_the_evaluator() -> None:
    """Trainer and evaluator are siblings over the core, composed by the runner and the workloads; the
    trainer reaching into the evaluator would put the evaluator below it. What both compute (percentiles)
    lives in the core."""
    assert offenders(sources(TRAINER / "trainer"), "agentrun.evaluator") == set()


def test_the_workloads_do_not_import_the_local_runner() -> None:
    """The operator's Jobs and `agentrun run` are two runtimes wired by one composition root,
    agentrun.pipeline; a Job reaching into `agentrun run` would depend on its CLI-only parts."""
    assert offenders(sources(TRAINER / "workloads"), "agentrun.runner") == set()


def test_benchmarks_import_no_test_module() -> None:
    """Benchmarks share test infrastructure through `testkit`; importing `tests` would tie them to the
    suite's layout and its conftest side effects."""
    assert offenders(sources(REPO / "bench"), "tests") == set()


def test_shipped_code_imports_no_test_infrastructure() -> None:
    """The source roots are what the images install; `testkit` and `tests` are not in them."""
    roots = (REPO / root / "agentrun" for root in ("core", "trainer", "evaluator", "operator"))
    assert offenders(sources(*roots), "testkit", "tests") == set()
