"""Entry point of the `agentrun` console script: the composition root that gathers every part's commands.

The rest of the core imports nothing from the runtime parts (operator, trainer, evaluator); only this
module names them. Commands of the torch-based parts are imported when invoked, not at start-up, so
`agentrun --help` stays fast and the CLI works in images that do not install torch.
"""

from __future__ import annotations

import importlib

import click

from agentrun.cli import crd, data, scripted, validate

# command name -> "module:attribute" of a click command defined by a part that may need torch.
LAZY_COMMANDS = {
    "compare": "agentrun.evaluator.cli:compare_command",
    "eval": "agentrun.evaluator.cli:eval_command",
    "model": "agentrun.models.cli:model",
    "operator": "agentrun.operator.cli:operator",
    "run": "agentrun.runner.cli:run",
    "serve": "agentrun.serving.cli:serve",
    "sft": "agentrun.trainer.cli:sft",
}


class LazyGroup(click.Group):
    """A click group whose LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = LAZY_COMMANDS[cmd_name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            return _unavailable(cmd_name, str(exc.name))
        command: click.Command = getattr(module, attribute)
        return command


def _unavailable(name: str, missing: str) -> click.Command:
    """Stands in for a command whose part is not installed: listed in --help, explains when run."""
    fix = f"`agentrun {name}` needs {missing!r}, which is not installed: pip install 'agentrun[torch]'"

    def fail() -> None:
        raise click.ClickException(fix)

    return click.Command(name, callback=fail, help=fix, short_help=f"(unavailable: needs {missing})",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentrun")
def cli() -> None:
    """agentrun: train tool-using LLM agents with reinforcement learning.

    One AgentTrainingRun manifest describes a run; these commands validate it, build its dataset,
    build and serve models, and benchmark them on the email research task.
    """


cli.add_command(crd.crd)
cli.add_command(validate.validate)
cli.add_command(data.data)
cli.add_command(scripted.serve_scripted)


if __name__ == "__main__":
    cli()
