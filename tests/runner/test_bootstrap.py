"""Held out means held out: builtin:tiny's bootstrap learns from the questions GRPO draws from and from no
validation or test question, and a bootstrap cached before that rule is not reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from agentrun import pipeline, storage  # noqa: E402
from agentrun.evaluator import benchmark  # noqa: E402
from agentrun.mailbox import writer  # noqa: E402
from agentrun.scripted.knowledge import Knowledge  # noqa: E402
from agentrun.spec.models import AgentTrainingRun  # noqa: E402
from agentrun.trainer import curriculum  # noqa: E402

HELD_OUT = 10


def test_the_bootstrap_learns_only_from_the_training_pool(dataset: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run = AgentTrainingRun.model_validate({
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun", "metadata": {"name": "held-out"},
        "spec": {"model": {"base": pipeline.TINY}, "dataset": {"name": "small"},
                 "evaluation": {"limit": HELD_OUT}, "storage": {"localDir": str(tmp_path)}},
    })
    layout = storage.Layout(tmp_path)
    stale = [layout.model_dir("tiny-sft-small"),  # cached before the hold-out: it saw validation
             layout.model_dir(f"tiny-sft-small-heldout-{HELD_OUT}")]  # before the recipe key (older template)
    for directory in stale:
        directory.mkdir(parents=True)
        (directory / "config.json").write_text("{}")
    calls: list[dict[str, Any]] = []

    def fine_tune(base: str, root: Path, shown: list[Any], settings: Any, out: Path, **options: Any) -> None:
        calls.append({"shown": shown, **options})
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(pipeline.sft, "fine_tune", fine_tune)
    served = pipeline.prepare_base(run, layout, dataset, progress=False)

    assert [call["dataset_dir"] for call in calls] == [dataset]  # bootstrapped, not the stale cache
    assert Path(served) == pipeline.bootstrap_dir(run, layout).resolve()
    assert Path(served) not in {directory.resolve() for directory in stale}
    split = benchmark.split_train(dataset, HELD_OUT)
    training, validation = {s.id for s in split.training}, {s.id for s in split.validation}
    test = {s.id for s in writer.load_scenarios(storage.scenarios_file(dataset)) if s.split == "test"}
    assert validation and test
    known = Knowledge(dataset)
    demonstrated = [known.scenario_for(shown.messages).id for shown in calls[0]["shown"]]
    known.close()
    assert sorted(demonstrated) == sorted(training)  # each training question once, no other question
    assert not set(demonstrated) & (validation | test)
    # The copy curriculum's answers are the training pool's too, never a held-out question's.
    assert {s.id for s in calls[0]["scenarios"]} == training
    answers = curriculum.string_pools(dataset, calls[0]["scenarios"])[-1]
    assert answers == sorted({s.answer for s in split.training})

    pipeline.prepare_base(run, layout, dataset, progress=False)
    assert len(calls) == 1  # the new bootstrap is cached
