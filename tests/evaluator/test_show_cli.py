"""`agentrun show` on a run's trajectories file: episodes picked by question, kind and count, reference
answers found through the run's run.json, and the errors a reader can make named in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentrun.cli.main import cli
from agentrun.mailbox import writer
from agentrun.mailbox.records import Scenario
from agentrun.rollout.trajectory import write_jsonl
from agentrun.storage import Layout, scenarios_file
from tests.evaluator.test_transcript import trajectory


def show(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["show", *args])
    return result.exit_code, result.output


@pytest.fixture
def asked(dataset: Path) -> list[Scenario]:
    return sorted(writer.load_scenarios(scenarios_file(dataset)), key=lambda s: s.id)[:3]


@pytest.fixture
def step_file(tmp_path: Path, dataset: Path, asked: list[Scenario]) -> Path:
    """A run's step-1 trajectories in a storage root whose datasets/ holds the test dataset: one correct
    episode for the first question, wrong ones for the other two."""
    layout = Layout(tmp_path / "root")
    layout.dataset_dir("small").parent.mkdir(parents=True)
    layout.dataset_dir("small").symlink_to(dataset)
    layout.run_json("r").parent.mkdir(parents=True)
    layout.run_json("r").write_text(json.dumps({"spec": {"dataset": {"name": "small"}}}))
    path = layout.trajectories("r", 1)
    write_jsonl(path, [trajectory(s.id, s.question, correct=n == 0) for n, s in enumerate(asked)])
    return path


def test_show_prints_the_chosen_episodes_with_reference_answers_from_the_run(step_file: Path,
                                                                           asked: list[Scenario]) -> None:
    code, output = show(str(step_file), "--scenario", str(asked[1].id), "--scenario", str(asked[2].id),
                        "--limit", "1")
    assert code == 0, output
    assert output.startswith(f"{step_file}: 1 of 2 matching episodes (3 in the file)\n")
    assert f"scenario {asked[1].id} | " in output and f"scenario {asked[2].id} | " not in output
    assert asked[1].question in output and f"reference   {asked[1].answer}" in output
    assert 'search_emails(keywords=["glencore", "invoice"])' in output and "judged      wrong" in output


def test_only_picks_episodes_by_kind(step_file: Path, asked: list[Scenario]) -> None:
    code, output = show(str(step_file), "--only", "correct")
    assert code == 0, output
    assert output.count("judged      correct") == 1 and "judged      wrong" not in output
    code, output = show(str(step_file), "--only", "incorrect", "--limit", "0")
    assert code == 0, output
    assert output.count("judged      wrong") == 2 and "2 of 2 matching" in output
    code, output = show(str(step_file), "--only", "exception")
    assert code == 0 and "0 of 0 matching episodes" in output


def test_without_the_run_the_dataset_is_asked_for(step_file: Path, tmp_path: Path, dataset: Path) -> None:
    loose = tmp_path / "copied.jsonl.gz"
    loose.write_bytes(step_file.read_bytes())
    code, output = show(str(loose))
    assert code == 0, output
    assert "reference answers unavailable: the dataset was not found (pass --dataset DIR)" in output
    assert "(not available: the dataset's scenarios were not found)" in output
    code, output = show(str(loose), "--dataset", str(dataset))
    assert code == 0 and "unavailable" not in output and "not available" not in output


@pytest.mark.parametrize(("name", "content", "named"), [
    ("old.json", json.dumps({"model": "m", "summary": {}, "questions": []}), "names no trajectories file"),
    ("broken.jsonl.gz", "not gzip", "not a readable trajectories file"),
    ("broken.json", "{", "not a readable evaluation results file"),
])
def test_unreadable_files_are_named_in_one_line(tmp_path: Path, name: str, content: str, named: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    code, output = show(str(path))
    assert code == 1
    assert output.startswith(f"Error: {path}") and named in output and output.count("\n") == 1
