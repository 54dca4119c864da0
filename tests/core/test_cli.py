"""The top-level command: every part's command is listed, and a part that is not installed explains
itself instead of breaking `agentrun --help`."""

from __future__ import annotations

import click
from click.testing import CliRunner

from agentrun.cli import main


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main.cli, ["--help"])
    assert result.exit_code == 0
    for name in ["validate", "data", "eval", "serve-scripted", *main.LAZY_COMMANDS]:
        assert f"  {name} " in result.output


def test_lazy_commands_resolve_to_click_commands() -> None:
    context = click.Context(main.cli)
    for name in main.LAZY_COMMANDS:
        assert isinstance(main.cli.get_command(context, name), click.Command)


def test_missing_part_explains_the_fix() -> None:
    stand_in = main._unavailable("serve", "torch")
    result = CliRunner().invoke(stand_in, ["--port", "8000"])
    assert result.exit_code == 1
    assert "pip install 'agentrun[torch]'" in result.output
