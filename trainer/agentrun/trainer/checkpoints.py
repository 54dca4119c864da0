"""Checkpoints as DESIGN §2 fixes them: `checkpoints/step-000042/` holds a PEFT LoRA adapter that vanilla
`PeftModel.from_pretrained` and vLLM's filesystem resolver load (its `base_model_name_or_path` is the
served base model's name), plus what resuming exactly needs: `trainer_state.pt` (step, RNG, the step's record) and
the training engine's own state (the optimizer: `optimizer.pt`, or DeepSpeed's files).

A directory appears whole or not at all (storage.atomic_directory), and ends with a manifest of its files'
sizes and hashes; `latest` and resume take only checkpoints that match theirs (agentrun.checkpoint_files),
so a truncated, half-copied or swapped file is passed over, never loaded.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from agentrun import checkpoint_files, storage
from agentrun.checkpoint_files import TRAINER_STATE
from agentrun.trainer.engines import TrainingEngine


@dataclass
class TrainerState:
    step: int
    torch_rng: torch.Tensor
    record: dict[str, Any] = field(default_factory=dict)  # the step's StepRecord, for reporters after a resume


def write_adapter(model: PeftModel, directory: Path, base: str) -> None:
    """Save the adapter naming `base` as its base model, as the server names it (`Qwen/Qwen3-4B`,
    a local model directory), not the path it was loaded from: resolvers compare names."""
    model.peft_config["default"].base_model_name_or_path = base
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
        # Embeddings are not adapted; without this peft looks the base up on the hub to check.
        model.save_pretrained(directory, save_embedding_layers=False)


def save(model: PeftModel, base: str, directory: Path, state: TrainerState, engine: TrainingEngine) -> Path:
    """Write a checkpoint atomically; returns its directory. Every rank of the engine calls it: rank 0
    writes the adapter and the trainer state, every rank its share of the engine's state."""
    if engine.rank == 0:
        with storage.atomic_directory(directory) as staging:
            _fill(Path(engine.broadcast(str(staging))), model, base, state, engine)
    else:
        _fill(Path(engine.broadcast(None)), model, base, state, engine)
    return directory


def _fill(staging: Path, model: PeftModel, base: str, state: TrainerState, engine: TrainingEngine) -> None:
    engine.save_state(staging)
    with engine.full_parameters():
        if engine.rank == 0:
            write_adapter(model, staging, base)
    if engine.rank == 0:
        torch.save({"step": state.step, "torch_rng": state.torch_rng, "record": state.record},
                   staging / TRAINER_STATE)
    engine.barrier()  # every rank's files are in before rank 0 lists them and renames the directory into place
    if engine.rank == 0:
        checkpoint_files.write_manifest(staging, state.step)


def restore(directory: Path, engine: TrainingEngine) -> TrainerState:
    """Load the adapter weights and the optimizer through `engine` (in place) and return the trainer
    state to resume from."""
    damage = checkpoint_files.problem(directory)
    if damage:
        raise checkpoint_files.DamagedCheckpoint(damage)
    engine.load_state(directory)
    saved = torch.load(directory / TRAINER_STATE, weights_only=True)
    return TrainerState(step=saved["step"], torch_rng=saved["torch_rng"], record=saved.get("record", {}))


def prune(checkpoints_dir: Path, keep_last: int, keep_every: int, keep: Collection[str] = ()) -> list[Path]:
    """Delete intact checkpoints except the newest `keep_last`, those at multiples of `keep_every`,
    and those named in `keep` (the best by validation reward); returns what was deleted."""
    found = checkpoint_files.intact(checkpoints_dir)
    newest = {path for _, path in found[-keep_last:]} if keep_last else set()
    deleted = []
    for step, path in found:
        if path in newest or step % keep_every == 0 or path.name in keep:
            continue
        # Out of view first: a kill in the middle of rmtree must not leave a half-deleted step-N/ behind
        # (it would be passed over, but a checkpoint in view is whole). Resume removes what is left.
        doomed = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.rename(path, doomed)
        shutil.rmtree(doomed)
        deleted.append(path)
    return deleted
