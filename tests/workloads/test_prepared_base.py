"""The base a cluster run's pods name and load: builtin:tiny is built on the volume once and linked at the
run's `base`, the path the operator's vLLM Deployment serves (tests/operator/test_children.py holds the
operator's side); any other base is used as written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from transformers import AutoConfig  # noqa: E402

from agentrun import pipeline, storage  # noqa: E402
from agentrun.spec.models import AgentTrainingRun  # noqa: E402
from agentrun.workloads import prepare  # noqa: E402


def run_of(base: str) -> AgentTrainingRun:
    return AgentTrainingRun.model_validate({"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
                                            "metadata": {"name": "pods"}, "spec": {"model": {"base": base}}})


def test_the_tiny_bootstrap_is_linked_where_the_server_loads_it(tiny_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    layout = storage.Layout(tmp_path / "data")
    built = layout.model_dir("tiny-sft-bootstrap")
    shutil.copytree(tiny_dir, built)
    # the bootstrap itself (an SFT run of ~18 minutes on 2 cores) is tests/runner/test_bootstrap.py's
    monkeypatch.setattr(pipeline, "prepare_base", lambda run, layout, dataset_dir, progress: str(built))

    served = prepare.prepared_base(run_of("builtin:tiny"), layout, layout.dataset_dir("small"))

    assert served == str(layout.run_base("pods")) == str(tmp_path / "data" / "runs" / "pods" / "base")
    link = Path(served)
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()  # pods mount the volume elsewhere
    assert link.resolve() == built.resolve()
    assert AutoConfig.from_pretrained(served).model_type == "qwen3"
    # every workload relinks it on start: a second time replaces the link and leaves no staging file
    assert prepare.prepared_base(run_of("builtin:tiny"), layout, layout.dataset_dir("small")) == served
    assert sorted(p.name for p in link.parent.iterdir()) == ["base"]


def test_a_hub_id_or_directory_is_served_as_written(tiny_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    layout = storage.Layout(tmp_path / "data")
    monkeypatch.setattr(pipeline, "prepare_base", lambda run, layout, dataset_dir, progress: run.spec.model.base)
    for base in ("Qwen/Qwen3-4B", str(tiny_dir)):
        assert prepare.prepared_base(run_of(base), layout, layout.dataset_dir("small")) == base
    assert not layout.run_base("pods").exists()
