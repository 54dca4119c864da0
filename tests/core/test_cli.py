"""The top-level command: every part's command is listed without importing any, the listing agrees with
each command's own help, a part that is not installed explains itself instead of breaking `agentrun
--help`, and the commands that need no model answer without importing torch or DeepSpeed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agentrun.cli import main

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "transformers", "peft", "deepspeed"}

# Runs the CLI in a fresh interpreter, then names the heavy packages it imported (its last line).
PROBE = f"""
import sys
from agentrun.cli.main import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))
"""


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main.cli, ["--help"])
    assert result.exit_code == 0
    for name in main.COMMANDS:
        assert f"  {name} " in result.output


@pytest.mark.parametrize("name", sorted(main.COMMANDS))
def test_summary_is_the_commands_own(name: str) -> None:
    target, summary = main.COMMANDS[name]
    pytest.importorskip(target.split(":")[0])  # a part that is not installed lists its summary anyway
    command = main.cli.get_command(click.Context(main.cli), name)
    assert isinstance(command, click.Command)
    assert command.get_short_help_str(limit=10**6) == summary


def test_missing_part_explains_the_fix() -> None:
    stand_in = main._unavailable("serve", "torch")
    result = CliRunner().invoke(stand_in, ["--port", "8000"])
    assert result.exit_code == 1
    assert "pip install 'agentrun[torch]'" in result.output


@pytest.mark.parametrize(("args", "answer"), [(["--help"], "  serve-scripted "),
                                             (["validate", "examples/quickstart.yaml"], ": valid. run ")])
def test_answers_without_torch_or_deepspeed(args: list[str], answer: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    *output, imported = done.stdout.splitlines()
    assert ast.literal_eval(imported) == []
    assert "accelerator" not in (done.stdout + done.stderr).lower()
    assert answer in "\n".join(output)
