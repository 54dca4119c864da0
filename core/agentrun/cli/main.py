"""Entry point of the `agentrun` console script: the composition root that gathers every part's commands.

The rest of the core imports nothing from the runtime parts (operator, trainer, evaluator); only this
module does, to put their commands under one `agentrun`.
"""

from __future__ import annotations

import click

from agentrun.cli import data, scripted, validate
from agentrun.evaluator import cli as evaluator_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentrun")
def cli() -> None:
    """agentrun: train tool-using LLM agents with reinforcement learning.

    One AgentTrainingRun manifest describes a run; these commands validate it, build its dataset and
    benchmark models on the email research task.
    """


cli.add_command(validate.validate)
cli.add_command(data.data)
cli.add_command(evaluator_cli.eval_command)
cli.add_command(scripted.serve_scripted)


if __name__ == "__main__":
    cli()
