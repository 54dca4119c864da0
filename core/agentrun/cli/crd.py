"""`agentrun crd`: print the AgentTrainingRun CustomResourceDefinition generated from the spec."""

from __future__ import annotations

import click

from agentrun.spec.crd import crd_yaml


@click.command()
def crd() -> None:
    """Print the AgentTrainingRun CRD (YAML), generated from the same pydantic models `agentrun run` reads.

    Install it with `agentrun crd | kubectl apply --server-side -f -`; the Helm chart ships the same file.
    """
    click.echo(crd_yaml(), nl=False)
