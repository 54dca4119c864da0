"""The runner's dataset step: the spec's difficulty reaches the build, and a dataset directory of the same
name built from other settings stops the run with the difference named instead of being reused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from agentrun import pipeline, storage  # noqa: E402
from agentrun.mailbox import build, writer  # noqa: E402
from agentrun.spec import loading  # noqa: E402
from agentrun.spec.models import AgentTrainingRun  # noqa: E402


def run_with(tmp_path: Path, **dataset: object) -> AgentTrainingRun:
    return loading.parse_run({
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun", "metadata": {"name": "r"},
        "spec": {"dataset": {"name": "shared", "emails": 1000, **dataset}, "storage": {"localDir": str(tmp_path)}},
    })


def test_the_spec_difficulty_is_built_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    layout = storage.Layout(tmp_path)
    easy = run_with(tmp_path, messageIdStyle="short", hardDistractors=0.0, emailsPerInbox=250)
    directory = pipeline.prepare_dataset(easy, layout, progress=False)
    assert build.built_from(directory) == {"source": "synthetic", "seed": 0, "emails": 1000, "messageIdStyle": "short",
                                           "hardDistractors": 0.0, "emailsPerInbox": 250}
    assert all(s.message_ids[0].startswith("<m") for s in writer.load_scenarios(storage.scenarios_file(directory)))
    assert pipeline.prepare_dataset(easy, layout, progress=False) == directory  # the same settings: reused

    with pytest.raises(pipeline.RunError, match=r"dataset 'shared': .*hardDistractors=0\.0.*hardDistractors=1\.0"):
        pipeline.prepare_dataset(run_with(tmp_path, messageIdStyle="short", emailsPerInbox=250), layout, progress=False)
