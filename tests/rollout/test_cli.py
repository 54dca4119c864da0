"""`agentrun serve-scripted` options."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner

from agentrun.cli.scripted import serve_scripted
from agentrun.scripted.serving import ScriptedProcess


def test_help_lists_the_knobs() -> None:
    result = CliRunner().invoke(serve_scripted, ["--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--policy", "--port", "--latency-ms", "--error-rate", "--log-level"):
        assert option in result.output


def test_a_missing_dataset_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(serve_scripted, ["--dataset", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_the_command_serves_in_a_child_process(dataset: Path) -> None:
    with ScriptedProcess(dataset, models=("a", "b")) as server, httpx.Client() as http:
        models = http.get(server.base_url + "/models").json()
        assert [card["id"] for card in models["data"]] == ["a", "b"]
        assert server.pid > 0
