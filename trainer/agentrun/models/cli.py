"""`agentrun model ...`: build the offline tiny model."""

from __future__ import annotations

import time
from pathlib import Path

import click

from agentrun.models import tiny


@click.group("model")
def model() -> None:
    """Build and inspect base models."""


@model.command("init-tiny")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory to write the model to (Hugging Face layout); replaced if it exists.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the synthetic text the tokenizer learns from and of the random weights.")
def init_tiny(out: Path, seed: int) -> None:
    """Build the tiny Qwen3-architecture model and its tokenizer, without any download.

    Random weights (train them with `agentrun sft`); load the directory with `from_pretrained` or
    serve it with `agentrun serve --model DIR`.
    """
    started = time.perf_counter()
    tiny.build_tiny(out, seed)
    click.echo(f"built the tiny model in {out} in {time.perf_counter() - started:.1f} s")
