"""`agentrun validate FILE`: check a manifest before applying or running it."""

from __future__ import annotations

from pathlib import Path

import click

from agentrun.spec import loading


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path))
def validate(manifest: Path) -> None:
    """Validate an AgentTrainingRun MANIFEST (YAML).

    Prints every problem with its field path and a hint, and exits with status 1 if there is any;
    prints a one-line summary of the run otherwise.
    """
    try:
        run = loading.load_run(manifest)
    except loading.SpecError as exc:
        click.echo(f"{exc.source}: {len(exc.issues)} problem(s)", err=True)
        for issue in exc.issues:
            click.echo(f"  {issue}", err=True)
        raise SystemExit(1) from None
    spec = run.spec
    click.echo(
        f"{manifest}: valid. run {run.metadata.name!r}: model {spec.model.base}, dataset "
        f"{spec.dataset.name} ({spec.dataset.source.value}), {spec.training.steps} steps of "
        f"{spec.training.scenarios_per_step}x{spec.training.group_size} rollouts"
    )
