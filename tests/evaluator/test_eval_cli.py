"""`agentrun eval` end to end: the CLI benchmarks a scripted policy over real HTTP and prints the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentrun import storage
from agentrun.cli.main import cli
from agentrun.mailbox import writer
from agentrun.rollout.trajectory import read_jsonl
from agentrun.scripted import policies
from agentrun.scripted.server import PolicyName, ServerConfig
from agentrun.scripted.serving import ScriptedServer


@pytest.fixture(scope="module")
def oracle(dataset: Path) -> Iterator[ScriptedServer]:
    with ScriptedServer(ServerConfig(dataset_dir=dataset, models=("oracle",))) as server:
        yield server


def run_eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", "--no-progress", *args])
    return result.exit_code, result.output


def test_oracle_benchmark_prints_table_and_writes_results(dataset: Path, oracle: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    code, output = run_eval("--endpoint", oracle.base_url, "--model", "oracle", "--dataset", str(dataset),
                            "--limit", "20", "--out", str(out))
    assert code == 0, output
    assert "answer accuracy  |  100.0%" in output
    saved = json.loads(out.read_text())
    assert saved["summary"]["questions"] == 20
    assert saved["summary"]["answer_accuracy"] == 1.0
    assert saved["summary"]["mean_reward"] > 1.0
    ids = [row["scenario_id"] for row in saved["questions"]]
    assert ids == sorted(ids)  # a fixed order, so two evaluations pair question by question


def test_eval_shows_episodes_after_the_table_and_keeps_them_for_show(
    dataset: Path, oracle: ScriptedServer, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    code, output = run_eval("--endpoint", oracle.base_url, "--model", "oracle", "--dataset", str(dataset),
                            "--limit", "5", "--out", str(out), "--show", "2")
    assert code == 0, output
    table, episodes = output.split("\n\n=", 1)
    assert "answer accuracy  |  100.0%" in table and f"agentrun show {out}" in table
    scenarios = {s.id: s for s in writer.load_scenarios(storage.scenarios_file(dataset))}
    first = sorted(s.id for s in scenarios.values() if s.split == "test")[:2]  # every answer is right: the first two
    assert [int(line.split()[1]) for line in episodes.splitlines() if line.startswith("scenario ")] == first
    assert episodes.count("judged      correct") == 2 and "search_emails(" in episodes
    assert all(f"reference   {scenarios[i].answer}" in episodes for i in first)

    saved = json.loads(out.read_text())
    assert saved["trajectories"] == "results.jsonl.gz" and saved["dataset"] == str(dataset.resolve())
    kept = read_jsonl(tmp_path / "results.jsonl.gz")
    assert [t.scenario_id for t in kept] == [row["scenario_id"] for row in saved["questions"]]
    assert all(turn.token_ids is turn.logprobs is turn.prompt_token_ids is None for t in kept for turn in t.turns)
    shown = CliRunner().invoke(cli, ["show", str(out), "--limit", "0"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("judged      correct") == 5 and "unavailable" not in shown.output


def test_noisy_policy_scores_lower(dataset: Path, tmp_path: Path) -> None:
    config = ServerConfig(dataset_dir=dataset, models=("noisy",), policy=PolicyName.NOISY,
                          mistakes={mistake: 0.15 for mistake in policies.Mistake})
    out = tmp_path / "noisy.json"
    with ScriptedServer(config) as server:
        code, output = run_eval("--endpoint", server.base_url, "--model", "noisy", "--dataset", str(dataset),
                                "--limit", "40", "--out", str(out))
    assert code == 0, output
    summary = json.loads(out.read_text())["summary"]
    assert summary["answer_accuracy"] < 1.0
    assert set(summary["outcomes"]) - {"correct"}  # some mistakes are classified into other outcomes


def test_unknown_model_fails_every_question_with_exit_1(dataset: Path, oracle: ScriptedServer) -> None:
    code, output = run_eval("--endpoint", oracle.base_url, "--model", "nope", "--dataset", str(dataset),
                            "--limit", "3")
    assert code == 1
    assert "every question failed" in output and "404" in output


def test_missing_dataset_names_the_fix(tmp_path: Path, oracle: ScriptedServer) -> None:
    code, output = run_eval("--endpoint", oracle.base_url, "--model", "oracle", "--dataset", str(tmp_path / "none"))
    assert code == 1
    assert "agentrun data build" in output


def test_unreachable_server_is_reported_after_waiting(dataset: Path) -> None:
    code, output = run_eval("--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--dataset", str(dataset),
                            "--wait-for-server", "0.3")
    assert code == 1
    assert "no server answered at http://127.0.0.1:9/health" in output


def test_llm_judge_without_endpoint_is_a_usage_error(dataset: Path, oracle: ScriptedServer) -> None:
    code, output = run_eval("--endpoint", oracle.base_url, "--model", "oracle", "--dataset", str(dataset),
                            "--judge", "llm")
    assert code == 1
    assert "endpoint" in output


@pytest.mark.parametrize(("damage", "named"), [
    ("weights missing", "adapter_model.safetensors: missing"),
    ("weights truncated", "adapter_model.safetensors"),
    ("config a list", "adapter_config.json: not a LoRA adapter config"),
    ("config not JSON", "adapter_config.json: not valid JSON"),
])
def test_a_damaged_checkpoint_is_refused_in_one_line_before_any_server_starts(
    dataset: Path, tmp_path: Path, damage: str, named: str
) -> None:
    from tests.core.test_checkpoint_files import write_checkpoint

    checkpoint = write_checkpoint(tmp_path, 3)
    weights, config = checkpoint / "adapter_model.safetensors", checkpoint / "adapter_config.json"
    if damage == "weights missing":
        weights.unlink()
    elif damage == "weights truncated":
        weights.write_bytes(weights.read_bytes()[:50])
    else:
        config.write_text("[1]" if damage == "config a list" else "{not json")
    code, output = run_eval("--checkpoint", str(checkpoint), "--dataset", str(dataset))
    assert code == 1
    assert output.count("\n") == 1 and output.startswith("Error: not a usable checkpoint: ") and named in output
    assert "Traceback" not in output
