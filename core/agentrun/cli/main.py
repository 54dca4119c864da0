"""Entry point of the `agentrun` console script: the composition root that gathers every part's commands.

The rest of the core imports nothing from the runtime parts (operator, trainer, evaluator); only this
module names them. Every command's module is imported only when that command runs: the core's own
commands pull in pydantic, pyarrow, openai or fastapi and the runtime parts torch, so importing them
all made `agentrun --help` take seconds. The listing reads each command's summary from COMMANDS
instead, and the CLI still works in images that do not install torch.
"""

from __future__ import annotations

import importlib

import click

# command name -> ("module:attribute" of its click command, the first sentence of its help). A test
# checks each summary against the command's own help, so the two cannot drift apart.
COMMANDS = {
    "compare": ("agentrun.evaluator.cli:compare_command",
                "Compare the evaluations of a run's checkpoints (RUN_DIR/evals/*.json), by split and step."),
    "crd": ("agentrun.cli.crd:crd",
            "Print the AgentTrainingRun CRD (YAML), generated from the same pydantic models `agentrun run` "
            "reads."),
    "data": ("agentrun.cli.data:data",
             "Build and inspect mailbox datasets: a directory holding emails.db and scenarios.parquet."),
    "eval": ("agentrun.evaluator.cli:eval_command", "Benchmark MODEL at ENDPOINT on the email research task."),
    "model": ("agentrun.models.cli:model", "Build and inspect base models."),
    "operator": ("agentrun.operator.cli:operator",
                 "Reconcile AgentTrainingRuns into their workloads (DESIGN §5) until stopped."),
    "run": ("agentrun.runner.cli:run",
            "Train the AgentTrainingRun in MANIFEST locally: the embedded model server (or vLLM) on this machine, "
            "plain torch instead of DeepSpeed, the spec's storage.localDir instead of a PVC."),
    "serve": ("agentrun.serving.cli:serve",
              "Serve a model over vLLM's OpenAI-compatible API, with LoRA adapters and batched generation."),
    "serve-scripted": ("agentrun.cli.scripted:serve_scripted",
                       "Serve a scripted policy over vLLM's OpenAI-compatible API (chat completions with "
                       "tools)."),
    "show": ("agentrun.evaluator.cli:show_command",
             "Print episodes as transcripts: the question, each tool call with its result, the final answer "
             "beside the reference answer, the judgement and the reward's parts."),
    "sft": ("agentrun.trainer.cli:sft", "Fine-tune BASE on demonstrations, training only the assistant's tokens."),
    "validate": ("agentrun.cli.validate:validate", "Validate an AgentTrainingRun MANIFEST (YAML)."),
}


class LazyGroup(click.Group):
    """A click group whose COMMANDS are imported on first use and listed without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[cmd_name][0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            return _unavailable(cmd_name, str(exc.name))
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing resolves every command; a stand-in carrying only the summary shortens it
        # to the width exactly as the real command's help would be.
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, click.Command(name, help=summary).get_short_help_str(limit))
                for name, (_, summary) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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


if __name__ == "__main__":
    cli()
