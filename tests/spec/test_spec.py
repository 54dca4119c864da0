"""The run spec: examples validate, defaults hold, and every kind of bad input gets a field path and hint."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from agentrun.cli.validate import validate as validate_command
from agentrun.spec import loading
from agentrun.mailbox import synthetic
from agentrun.spec.models import AgentTrainingRun, DatasetSpec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


HEADER = "apiVersion: agentrun.dev/v1alpha1\nkind: AgentTrainingRun\nmetadata:\n  name: demo\n"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(example: Path) -> None:
    run = loading.load_run(example)
    assert run.metadata.name == example.stem


def test_examples_cover_local_and_cluster() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart.yaml", "qwen3-4b-enron.yaml"}


def test_minimal_manifest_gets_documented_defaults(tmp_path: Path) -> None:
    run = loading.load_run(write(tmp_path, HEADER))
    assert run.spec.model.base == "builtin:tiny"
    assert (run.spec.environment.max_turns, run.spec.environment.max_new_tokens) == (10, 2048)
    assert (run.spec.training.eps_low, run.spec.training.eps_high) == (0.2, 0.28)
    assert run.spec.training.kl_coef == 0.0
    assert run.spec.training.importance_correction.enabled


def test_the_dataset_difficulty_defaults_are_the_generators() -> None:
    """Left out, the difficulty settings build the corpus-like mailbox the generator makes by default."""
    spec = DatasetSpec()
    assert synthetic.Difficulty(spec.message_id_style, spec.hard_distractors, spec.emails_per_inbox) == (
        synthetic.Difficulty())
    assert get_args(DatasetSpec.model_fields["message_id_style"].annotation) == get_args(synthetic.MessageIdStyle)


def test_every_field_has_a_description() -> None:
    """Descriptions become `kubectl explain` text; a field without one is a documentation bug."""
    schema = AgentTrainingRun.model_json_schema(by_alias=True)
    missing = [
        f"{name}.{field}"
        for name, definition in schema["$defs"].items()
        for field, body in definition.get("properties", {}).items()
        if "description" not in body
    ]
    missing += [f for f, body in schema["properties"].items() if "description" not in body]
    assert missing == []


def test_round_trip_through_camel_case() -> None:
    run = loading.parse_run({"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
                             "metadata": {"name": "x"}, "spec": {"training": {"groupSize": 8}}})
    dumped = run.model_dump(by_alias=True, mode="json")
    assert dumped["spec"]["training"]["groupSize"] == 8
    assert AgentTrainingRun.model_validate(dumped) == run


BAD_CASES = [
    ("spec:\n  training:\n    groupsize: 8\n", "spec.training.groupsize", "did you mean `groupSize`?"),
    ("spec:\n  training:\n    groupSize: 1\n", "spec.training.groupSize", "within bounds"),
    ("spec:\n  training:\n    learningRate: -0.1\n", "spec.training.learningRate", "within bounds"),
    ("spec:\n  dataset:\n    source: s3\n", "spec.dataset.source", "'synthetic', 'hf' or 'maildir'"),
    ("spec:\n  dataset:\n    source: maildir\n", "spec.dataset", "maildirPath"),
    ("spec:\n  reward:\n    judge:\n      kind: llm\n", "spec.reward.judge", "endpoint"),
    ("spec:\n  rollout:\n    concurrency: many\n", "spec.rollout.concurrency", "'many'"),
    ("spec:\n  modle: {}\n", "spec.modle", "did you mean `model`?"),
    ("spec:\n  learner:\n    deepspeed:\n      zeroStage: 4\n", "spec.learner.deepspeed.zeroStage", "one of"),
    ("spec:\n  evaluation:\n    everySteps: 15\n", "spec", "multiple of training.checkpointEvery"),
    ("spec:\n  dataset:\n    messageIdStyle: uuid\n", "spec.dataset.messageIdStyle", "'enron' or 'short'"),
    ("spec:\n  dataset:\n    hardDistractors: 1.5\n", "spec.dataset.hardDistractors", "within bounds"),
    ("spec:\n  dataset:\n    emailsPerInbox: 10\n", "spec.dataset.emailsPerInbox", "within bounds"),
    ("spec:\n  reward:\n    partialCredit: -0.1\n", "spec.reward.partialCredit", "within bounds"),
    ("spec:\n  reward:\n    wrongAnswer: 1.5\n", "spec.reward", "correctAnswer must exceed"),
    ("spec:\n  rollout:\n    maxStaleness: 9\n", "spec.rollout.maxStaleness", "within bounds"),
    ("spec:\n  rollout:\n    maxStaleness: 1\n  training:\n    importanceCorrection:\n      enabled: false\n", "spec",
     "samples from an older adapter need the importance correction"),
]


@pytest.mark.parametrize(("body", "path", "hint"), BAD_CASES)
def test_bad_field_is_named_with_a_hint(tmp_path: Path, body: str, path: str, hint: str) -> None:
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(write(tmp_path, HEADER + body))
    issues = {issue.path: str(issue) for issue in caught.value.issues}
    assert path in issues, issues
    assert hint in issues[path]


def test_bad_name_and_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(write(tmp_path, HEADER.replace("name: demo", "name: Demo_Run")))
    assert "DNS label" in str(caught.value.issues[0])
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(write(tmp_path, "apiVersion: agentrun.dev/v1alpha1\nkind: AgentTrainingRun\n"))
    assert [i.path for i in caught.value.issues] == ["metadata"]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    body = "spec:\n  training:\n    groupSize: 0\n    steps: 0\n  rollout:\n    topP: 3\n"
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(write(tmp_path, HEADER + body))
    assert {i.path for i in caught.value.issues} == {
        "spec.training.groupSize", "spec.training.steps", "spec.rollout.topP"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [unclosed\n", "not valid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\n", "no AgentTrainingRun document"),
        (HEADER + "---\n" + HEADER, "2 AgentTrainingRun documents"),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(loading.SpecError, match=expected):
        loading.load_run(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(loading.SpecError, match="no such file"):
        loading.load_run(tmp_path / "absent.yaml")


def test_wrong_api_version(tmp_path: Path) -> None:
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(write(tmp_path, HEADER.replace("v1alpha1", "v1")))
    assert "apiVersion" in str(caught.value)


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(validate_command, [str(REPO / "examples" / "quickstart.yaml")])
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = runner.invoke(validate_command, [str(write(tmp_path, HEADER + "spec:\n  training:\n    groupsize: 8\n"))])
    assert bad.exit_code == 1
    assert "spec.training.groupsize: unknown field (hint: did you mean `groupSize`?)" in bad.output
