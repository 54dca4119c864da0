"""`agentrun data`: build a mailbox dataset directory from a source, and summarise one."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click
from click.core import ParameterSource

from agentrun.mailbox import build as builder
from agentrun.mailbox import hf, synthetic
from agentrun.mailbox.schema import MailboxError

DEFAULTS = synthetic.Difficulty()


@click.group(help="Build and inspect mailbox datasets: a directory holding emails.db and scenarios.parquet.")
def data() -> None:
    pass


@data.command(
    "build",
    help=(
        "Build emails.db and scenarios.parquet in --out.\n\n"
        "\b\n"
        "Sources:\n"
        "  synthetic  a generated corporate mailbox with questions known by construction (offline, seeded)\n"
        "  hf         the public ART·E data: corbt/enron-emails and corbt/enron_emails_sample_questions,\n"
        "             or local directories holding their parquet files\n"
        "  maildir    the raw Enron maildir (no questions unless --questions-dataset is given)"
    ),
)
@click.option("--source", type=click.Choice(builder.SOURCES), default="synthetic", show_default=True,
              help="Where the emails and questions come from.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory to write (created if missing; emails.db, scenarios.parquet and build.json, the "
                   "settings it was built with, are replaced).")
@click.option("--seed", type=int, default=0, show_default=True, help="synthetic: the seed everything follows from.")
@click.option("--emails", type=click.IntRange(min=1), default=None,
              help=f"synthetic: mailbox size (default {synthetic.DEFAULT_EMAILS:,}); "
                   "hf, maildir: read at most N emails.")
@click.option("--message-id-style", type=click.Choice(get_args(synthetic.MessageIdStyle)),
              default=DEFAULTS.message_id_style, show_default=True, help="synthetic: `enron` JavaMail ids (27 tokens) or `short` ones (<m4821@thyme>).")
@click.option("--hard-distractors", type=click.FloatRange(0.0, 1.0), default=DEFAULTS.hard_distractors,
              show_default=True,
              help="synthetic: density of emails naming a question's keywords that are not its source "
                   "(1: the source is the first search hit for ~15% of questions; 0: for nearly all).")
@click.option("--emails-per-inbox", type=click.IntRange(min=1), default=DEFAULTS.emails_per_inbox,
              show_default=True,
              help=f"synthetic: mean inbox size; the mailbox gets emails / N inboxes "
                   f"({synthetic.MIN_INBOXES}-{synthetic.MAX_INBOXES}).")
@click.option("--emails-dataset", default=hf.EMAILS_DATASET, show_default=True,
              help="hf: hub dataset id or local directory of the emails' parquet files.")
@click.option("--questions-dataset", default=None,
              help=f"hf, maildir: hub dataset id or local directory of question parquet files "
                   f"(hf default: {hf.QUESTIONS_DATASET}; maildir default: none).")
@click.option("--maildir", "maildir_path", type=click.Path(path_type=Path), default=None,
              help="maildir: path of the Enron maildir (the folder holding <user>/<folder>/<n>. files, or its parent).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.pass_context
def build_command(
    ctx: click.Context, source: builder.Source, out: Path, seed: int, emails: int | None,
    message_id_style: synthetic.MessageIdStyle, hard_distractors: float, emails_per_inbox: int, emails_dataset: str,
    questions_dataset: str | None, maildir_path: Path | None, no_progress: bool,
) -> None:
    _check_options(ctx, source, maildir_path)
    difficulty = synthetic.Difficulty(message_id_style, hard_distractors, emails_per_inbox)
    try:
        report = builder.build(
            source, out, seed=seed, emails=emails, difficulty=difficulty, emails_dataset=emails_dataset,
            questions_dataset=questions_dataset, maildir_path=maildir_path, progress=not no_progress,
        )
    except MailboxError as err:
        raise click.ClickException(str(err)) from err
    click.echo(report.render())


def _check_options(ctx: click.Context, source: str, maildir_path: Path | None) -> None:
    """Refuse options that the chosen source would silently ignore, and a missing maildir."""
    applies = {"seed": {"synthetic"}, "message_id_style": {"synthetic"}, "hard_distractors": {"synthetic"},
               "emails_per_inbox": {"synthetic"}, "emails_dataset": {"hf"}, "questions_dataset": {"hf", "maildir"},
               "maildir_path": {"maildir"}}
    options = {param.name: param.opts[0] for param in ctx.command.params}
    for name, sources in applies.items():
        if source not in sources and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            only = " or ".join(sorted(sources))
            raise click.UsageError(f"{options[name]} applies to --source {only}, not {source}")
    if source == "maildir" and maildir_path is None:
        raise click.UsageError("--source maildir needs --maildir PATH: the Enron maildir to read")
    if maildir_path is not None and not maildir_path.is_dir():
        raise click.BadParameter(
            f"{maildir_path} is not a directory; pass the Enron maildir's path", param_hint="--maildir"
        )


@data.command("stats", help="Summarise the dataset in DIR: emails, questions per split, and per questioned inbox.")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
def stats_command(directory: Path) -> None:
    if not directory.is_dir():
        raise click.ClickException(
            f"{directory}: no such dataset directory; build one with `agentrun data build --out {directory}`"
        )
    try:
        click.echo(builder.render(builder.stats(directory)))
    except MailboxError as err:
        raise click.ClickException(str(err)) from err
