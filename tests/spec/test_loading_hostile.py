"""Hostile manifests: whatever bytes a file holds, `agentrun validate` (and so `agentrun run` and the
workloads, which share `load_run`) answers with exit 0 or with exit 1 and short issues that each name a
field path, "line N, column M" or "<file>": never a traceback, a hang, gigabytes of memory or a
megabyte error message. Duplicate keys are errors naming both lines."""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import event, given, settings
from hypothesis import strategies as st

from agentrun.cli.main import cli
from agentrun.runner import cli as run_cli
from agentrun.spec import loading
from agentrun.spec.models import KIND, AgentTrainingRun
from agentrun.workloads.context import Workload

TOP_LEVEL_FIELDS = {field.alias or name for name, field in AgentTrainingRun.model_fields.items()}
HEADER = "apiVersion: agentrun.dev/v1alpha1\nkind: AgentTrainingRun\nmetadata:\n  name: demo\n"
LOCATION = re.compile(r"line \d+, column \d+|<file>")
# Every issue line's text as `agentrun validate` prints it, however large the input (ISSUE_CHARS per part).
ISSUE_LINE_CHARS = 3 * loading.ISSUE_CHARS + 20
EXAMPLES = int(os.environ.get("AGENTRUN_FUZZ_EXAMPLES", "100"))  # raise it for a longer local run
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=timedelta(seconds=1.5))


def write(directory: Path, content: str | bytes) -> Path:
    path = directory / "run.yaml"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def refusal(path: Path) -> list[loading.SpecIssue]:
    with pytest.raises(loading.SpecError) as caught:
        loading.load_run(path)
    return caught.value.issues


def validate(path: Path) -> Result:
    """`agentrun validate PATH`, checked for what holds for any input: exit 0 or exit 1 with a count line
    and one short issue line per problem, and never an exception other than SystemExit."""
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        count, *issues = result.stderr.splitlines()
        assert re.fullmatch(rf"{re.escape(str(path))}: \d+ problem\(s\)", count)
        assert 1 <= len(issues) <= loading.MAX_ISSUES + 1
        for line in issues:
            assert line.startswith("  ") and ": " in line and len(line) <= ISSUE_LINE_CHARS and line.isprintable(), line
    return result


def laughs(levels: int, width: int, use: str) -> str:
    """A "billion laughs" manifest: `width`**`levels` values from a few hundred bytes of aliases."""
    lines = [f"    l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return HEADER + "  labels:\n" + "\n".join(lines) + f"\n{use}*l{levels - 1}\n"


# --- encoding, nesting, size -----------------------------------------------------------------------------


def test_latin1_comment_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.encode() + b"# caf\xe9 au lait\nspec: {}\n")
    result = validate(path)
    assert result.exit_code == 1
    assert "line 5, column 6: not UTF-8: byte 0xe9 at offset" in result.stderr
    assert "save the file as UTF-8" in result.stderr


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 8
    [issue] = refusal(write(tmp_path, garbage))
    assert issue.path == "line 2, column 118" and "not UTF-8: byte 0x80 at offset 128" in issue.message
    assert validate(write(tmp_path, garbage)).exit_code == 1


def test_control_character_is_named_with_its_line(tmp_path: Path) -> None:
    [issue] = refusal(write(tmp_path, HEADER + "spec:\n  x: a\x07b\n"))
    assert (issue.path, issue.message) == ("line 6, column 7", "character #x0007 is not allowed in YAML")


@pytest.mark.parametrize("nested", [
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 10_000 + "1" + "}" * 10_000,
    HEADER + "spec:\n" + "".join(f"{'  ' * (depth + 1)}a{depth}:\n" for depth in range(300)),
], ids=["brackets", "braces", "block"])
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    [issue] = refusal(write(tmp_path, nested))
    assert LOCATION.fullmatch(issue.path) and issue.message == f"nested more than {loading.MAX_DEPTH} levels deep"
    assert validate(write(tmp_path, nested)).exit_code == 1


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    def labels(depth: int) -> str:  # the root, metadata and `depth` mappings, then the value 1
        return HEADER + "  labels: " + "{a: " * (depth - 3) + "1" + "}" * (depth - 3) + "\n"

    run = loading.load_run(write(tmp_path, labels(loading.MAX_DEPTH)))
    assert run.model_dump()["metadata"]["labels"]["a"]["a"]["a"]
    assert "nested more than" in refusal(write(tmp_path, labels(loading.MAX_DEPTH + 1)))[0].message


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "# padding\n" * (loading.MAX_BYTES // 10))
    assert [str(issue) for issue in refusal(path)] == [
        "<file>: larger than 1024 KiB (hint: a manifest is a few KB: is this the right file?)"]


def test_directory_and_device_are_not_manifests(tmp_path: Path) -> None:
    assert [i.message for i in refusal(tmp_path)] == ["not a regular file"]
    assert [i.message for i in refusal(Path("/dev/zero"))] == ["not a regular file"]


# --- aliases ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("levels", "width", "use"), [
    (9, 9, "  x: "), (6, 10, "  x: "), (6, 10, "spec:\n  training:\n    steps: ")],
    ids=["metadata-387M", "metadata-1M", "typed-1M"])
def test_billion_laughs_is_refused_quickly_in_bounded_memory(tmp_path: Path, levels: int, width: int,
                                                             use: str) -> None:
    """Today's main accepts the aliases under metadata (then writing run.json never ends) and answers a
    typed field with a hint of megabytes (387 million values under a typed field: it never finishes)."""
    path = write(tmp_path, laughs(levels, width, use))
    assert path.stat().st_size < 1000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        [issue] = refusal(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 50 * 2**20
    assert LOCATION.fullmatch(issue.path)
    assert issue.message.startswith("the manifest expands to more than 20,000 values")


def test_aliased_text_counts_each_time_it_is_used(tmp_path: Path) -> None:
    """A 100 KB string used 20 times would be 2 MB in run.json: the expanded text is bounded too."""
    big = "x" * 100_000
    path = write(tmp_path, HEADER + f"  big: &big {big}\n  copies: [{', '.join(['*big'] * 20)}]\n")
    [issue] = refusal(path)
    assert issue.path.startswith("line 6,") and "1024 KiB of text" in issue.message


def test_aliases_within_the_limits_still_work(tmp_path: Path) -> None:
    text = HEADER + "  labels: &labels {team: rl}\n  annotations: *labels\nspec:\n  training: &t {steps: 4}\n"
    run = loading.load_run(write(tmp_path, text))
    assert run.model_dump()["metadata"]["annotations"] == {"team": "rl"} and run.spec.training.steps == 4


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    [issue] = refusal(write(tmp_path, HEADER + "  x: &a [1, *a]\n"))
    assert issue.path == "line 5, column 13" and "alias *a is inside the node it names" in issue.message


# --- what an error may quote -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["x" * 900_000, "[" + "1, " * 15_000 + "1]", "{" + ", ".join(
    f"k{i}: v" for i in range(5_000)) + "}"], ids=["900KB-string", "15k-list", "5k-mapping"])
def test_a_huge_bad_value_gets_a_short_error(tmp_path: Path, value: str) -> None:
    """Today's main repeats the whole input in the hint: megabytes for one bad value."""
    path = write(tmp_path, HEADER + f"spec:\n  training:\n    steps: {value}\n")
    [issue] = refusal(path)
    assert issue.path == "spec.training.steps" and issue.hint.startswith("got ")
    assert len(str(issue)) < 250
    assert len(validate(path).stderr) < 400


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "spec:\n" + "".join(f"  unknown{i}: 1\n" for i in range(500)))
    issues = refusal(path)
    assert len(issues) == loading.MAX_ISSUES + 1
    assert issues[-1] == loading.SpecIssue("<file>", f"{500 - loading.MAX_ISSUES} more problems not shown",
                                           "fix these and validate again")


def test_a_huge_unknown_key_is_clipped(tmp_path: Path) -> None:
    [issue] = refusal(write(tmp_path, HEADER + "spec:\n  ? " + "k" * 500_000 + "\n  : 1\n"))
    assert issue.path.startswith("spec.kkk") and issue.path.endswith("...")
    assert len(issue.path) == loading.ISSUE_CHARS


def test_control_characters_in_a_key_are_escaped(tmp_path: Path) -> None:
    """A key is quoted as written; one holding a terminal escape or a newline must not reach the terminal."""
    [issue] = refusal(write(tmp_path, HEADER + 'spec:\n  "\\e[2J\\nsteps": 1\n'))
    assert issue.path == "spec.\\x1b[2J\\nsteps"


@pytest.mark.parametrize(("body", "where", "message"), [
    ("  x: 0x_\n", "line 5, column 6", "'0x_' is not a valid int"),
    ("  created: 2024-13-01\n", "line 5, column 12", "'2024-13-01' is not a valid timestamp"),
    ("  x: !!float abc\n", "line 5, column 6", "'abc' is not a valid float"),
    ("  x: !!binary /w==\n", "line 5, column 6", "!!binary values are not supported"),
])
def test_values_python_cannot_build_are_named(tmp_path: Path, body: str, where: str, message: str) -> None:
    """These crashed validation (ValueError) or, for !!binary, validated and then crashed writing run.json."""
    [issue] = refusal(write(tmp_path, HEADER + body))
    assert issue.path == where and issue.message.startswith(message)


# --- duplicate keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "issue"), [
    ("spec:\n  training:\n    steps: 10\n    groupSize: 4\n    steps: 20\n",
     "line 9, column 5: duplicate key 'steps' (lines 7 and 9)"),
    ("spec:\n  training:\n    steps: 10\nspec:\n  rollout: {}\n",
     "line 8, column 1: duplicate key 'spec' (lines 5 and 8)"),
    ("  labels: {team: a, team: b}\n", "line 5, column 21: duplicate key 'team' (lines 5 and 5)"),
    ("  name: other\n", "line 5, column 3: duplicate key 'name' (lines 4 and 5)"),
])
def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path, body: str, issue: str) -> None:
    result = validate(write(tmp_path, HEADER + body))
    assert result.exit_code == 1
    assert f"  {issue} (hint: YAML would keep only the last value: remove or rename one)" in result.stderr


def test_same_key_in_different_mappings_is_fine(tmp_path: Path) -> None:
    run = loading.load_run(write(tmp_path, HEADER + "spec:\n  training: {steps: 3}\n  rollout: {maxRetries: 3}\n"))
    assert run.spec.training.steps == 3


# --- every entry point shares the loader -----------------------------------------------------------------


def test_run_and_workloads_use_the_bounded_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli.load_run is loading.load_run  # `agentrun run` (importing the whole runner needs torch)
    monkeypatch.setenv("AGENTRUN_RUN_FILE", str(write(tmp_path, laughs(9, 9, "  x: "))))
    monkeypatch.setenv("AGENTRUN_STORAGE", str(tmp_path))
    with pytest.raises(loading.SpecError, match="expands to more than"):
        Workload.from_environment()


# --- properties ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


YAML_TEXT = st.text("[]{}:,-?&*!|>'\"#%@`~<=.\\ \t\nab01", max_size=200)  # the punctuation YAML is made of
AFTER_HEADER = st.binary(max_size=300) | (YAML_TEXT | st.text()).map(str.encode)


@FUZZ
@given(data=st.binary(max_size=600) | st.text(max_size=300).map(str.encode)
       | AFTER_HEADER.map(lambda tail: HEADER.encode() + tail))
def test_any_bytes_give_exit_0_or_short_located_issues(fuzz_dir: Path, data: bytes) -> None:
    path = write(fuzz_dir, data)
    result = validate(path)
    event(f"exit {result.exit_code}")
    if result.exit_code == 1:
        for issue in refusal(path):
            if not (LOCATION.fullmatch(issue.path) or issue.path == "kind"):  # then a field of the run document
                [run] = [doc for doc in yaml.safe_load_all(data) if isinstance(doc, dict) and doc.get("kind") == KIND]
                assert any(issue.path == key or issue.path.startswith(f"{key}.")
                           for key in {*map(str, run), *TOP_LEVEL_FIELDS}), issue


FIELD_NAMES = sorted({name for definition in AgentTrainingRun.model_json_schema(by_alias=True)["$defs"].values()
                      for name in definition.get("properties", {})})
KEYS = st.sampled_from(FIELD_NAMES) | st.text("abcdefghijklmnopqrstuvwxyz0123456789-_ ", min_size=1, max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
           | st.sampled_from(["synthetic", "bfloat16", "llm", "deterministic", "builtin:tiny", "demo"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
                      max_leaves=25)
MANIFESTS = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["agentrun.dev/v1alpha1", "v1"]), "kind": st.just("AgentTrainingRun"),
     "metadata": st.fixed_dictionaries({"name": st.sampled_from(["demo", "Bad_Name"]) | st.text(max_size=10)})},
    optional={"spec": st.dictionaries(st.sampled_from(FIELD_NAMES) | KEYS, VALUES, max_size=8)},
)


def walk(document: Any, path: str) -> None:
    """Follow a field path through the document: each of its parts must be there."""
    node = document
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        else:
            assert isinstance(node, dict) and part in node, (path, document)
            node = node[part]


@FUZZ
@given(manifest=MANIFESTS)
def test_any_structure_gives_a_run_or_issues_naming_its_fields(fuzz_dir: Path, manifest: dict[str, Any]) -> None:
    path = write(fuzz_dir, yaml.safe_dump(manifest, sort_keys=False))
    result = validate(path)
    event(f"exit {result.exit_code}")
    if result.exit_code == 0:
        return
    for issue in refusal(path):
        if issue.path != "<file>":  # the summary of issues not shown
            walk(manifest, issue.path.rsplit(".", 1)[0] if issue.message == "required field is missing"
                 else issue.path)


@FUZZ
@given(manifest=MANIFESTS, garbage=st.binary(min_size=1, max_size=40), where=st.floats(0, 1),
       repeat=st.booleans())
def test_damaged_yaml_gives_exit_0_or_short_located_issues(fuzz_dir: Path, manifest: dict[str, Any],
                                                           garbage: bytes, where: float, repeat: bool) -> None:
    """A dumped manifest with bytes spliced in, or one of its lines repeated (a duplicate key, mostly)."""
    text = yaml.safe_dump(manifest, sort_keys=False).encode()
    if repeat:
        lines = text.splitlines(keepends=True)
        at = int(where * (len(lines) - 1))
        text = b"".join(lines[: at + 1] + lines[at:])
    else:
        at = int(where * len(text))
        text = text[:at] + garbage + text[at:]
    event(f"exit {validate(write(fuzz_dir, text)).exit_code}")
