"""`agentrun sft`: supervised fine-tuning of a base model on demonstrations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from agentrun import demonstrations, storage
from agentrun.mailbox.schema import MailboxError
from agentrun.models import loading
from agentrun.spec.models import TINY
from agentrun.trainer import sft as fine_tuning


@click.command("sft")
@click.option("--base", default=TINY, show_default=True,
              help="Base model: builtin:tiny, a Hugging Face id (Qwen/Qwen3-4B) or a local model directory.")
@click.option("--dataset", "dataset_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Dataset directory: the oracle's episodes on its train split are the demonstrations (unless "
                   "--demonstrations is given), and the copy curriculum's strings come from it.")
@click.option("--demonstrations", "demonstrations_file", type=click.Path(path_type=Path, dir_okay=False),
              help="JSONL of demonstrations: rollout trajectories or {\"messages\", \"tools\"} objects.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the result: the full model, or with --lora the adapter.")
@click.option("--lora", is_flag=True, help="Train and save a LoRA adapter instead of the full model.")
@click.option("--steps", type=click.IntRange(min=1),
              help=f"Optimizer steps on demonstrations [default: {fine_tuning.TINY_BOOTSTRAP.steps} for {TINY}, "
                   f"else {fine_tuning.SFTSettings.steps}].")
@click.option("--batch-size", type=click.IntRange(min=1), default=fine_tuning.SFTSettings.batch_size, show_default=True,
              help="Demonstrations per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help=f"Peak learning rate, linear warmup then cosine decay [default: {fine_tuning.TINY_BOOTSTRAP.lr} "
                   f"for {TINY}, else {fine_tuning.SFTSettings.lr}].")
@click.option("--curriculum-steps", type=click.IntRange(min=0),
              help=f"Copy-curriculum steps first [default: {fine_tuning.TINY_BOOTSTRAP.curriculum_steps} for {TINY}, "
                   "else 0].")
@click.option("--language-steps", type=click.IntRange(min=0),
              help="Steps with the loss on every token of the demonstrations, before assistant-only SFT "
                   f"[default: {fine_tuning.TINY_BOOTSTRAP.language_steps} for {TINY}, else 0].")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N train scenarios of --dataset.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True,
              help="auto: bf16 autocast where the CPU computes bf16 natively, else fp32.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=storage.DEFAULT_LOCAL_ROOT,
              show_default=True, help="Storage root; builtin models are cached under its models/.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def sft(
    base: str, dataset_dir: Path | None, demonstrations_file: Path | None, out: Path, lora: bool, steps: int | None,
    batch_size: int, lr: float | None, curriculum_steps: int | None, language_steps: int | None, limit: int | None,
    precision: str, seed: int, root: Path, no_progress: bool,
) -> None:
    """Fine-tune BASE on demonstrations, training only the assistant's tokens.

    Demonstrations come from --demonstrations, or else from the scripted oracle on --dataset (tool
    results from the real environment). A randomly initialised base (builtin:tiny) first learns to copy
    strings from its context with a curriculum drawn from --dataset, then to read the demonstrations
    (every token trained), before the assistant-only SFT.
    """
    if dataset_dir is None and demonstrations_file is None:
        raise click.UsageError("pass --dataset (the oracle's demonstrations) or --demonstrations FILE")
    defaults = fine_tuning.TINY_BOOTSTRAP if base == TINY else fine_tuning.SFTSettings()
    given = {"steps": steps, "lr": lr, "curriculum_steps": curriculum_steps, "language_steps": language_steps}
    settings = dataclasses.replace(
        defaults, **{name: value for name, value in given.items() if value is not None}, batch_size=batch_size,
        seed=seed, precision=precision, progress=not no_progress,
    )
    if settings.curriculum_steps and dataset_dir is None:
        raise click.UsageError("the copy curriculum draws its strings from a dataset: pass --dataset too, "
                               "or --curriculum-steps 0")
    try:
        if demonstrations_file is not None:
            shown = demonstrations.read_jsonl(demonstrations_file)
        else:
            assert dataset_dir is not None
            shown = demonstrations.oracle(dataset_dir, "train", limit=limit, seed=seed)
        report = fine_tuning.fine_tune(base, root, shown, settings, out, dataset_dir=dataset_dir, lora=lora)
    except (demonstrations.DemonstrationError, fine_tuning.SFTError, loading.UnknownBaseModel, MailboxError) as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:  # from_pretrained: no such directory or hub id
        raise click.ClickException(f"cannot load base model {base!r}: {error}") from None
    click.echo(json.dumps(report.phases, indent=2))
    click.echo(f"saved {'the LoRA adapter' if lora else 'the model'} to {out}")
