"""Which files make a checkpoint (DESIGN §2), and whether a directory holds them whole.

A checkpoint is written into a staging directory and renamed into place (storage.atomic_directory), so a
crash never leaves a half-written `step-000042/`. Disks, copies and people still can: a file truncated
by a full volume, a directory copied in by hand half-way, an adapter swapped from another step. So the
writer finishes every checkpoint with a manifest, `checkpoint.json` (the step, and each file's size and
SHA-256), and every reader (resume, `latest`, `agentrun eval --checkpoint`, evaluation Jobs) asks
`problem()` first: None for a checkpoint that is exactly what was written, else one line naming the file
and what is wrong with it. Nothing here needs torch, so the evaluator and the operator's Jobs share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # written by PEFT's save_pretrained
TRAINER_STATE = "trainer_state.pt"
MANIFEST = "checkpoint.json"
STEP_DIR = re.compile(r"^step-(\d{6})$")
LEFTOVER = re.compile(r"^\.step-\d{6}\.(tmp|old)-")  # storage.atomic_directory's siblings, left by a crash


class DamagedCheckpoint(Exception):
    """A checkpoint that `problem()` finds fault with was about to be loaded."""


_MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors format's own limit on its JSON header
_CHUNK = 1 << 20

# Hashing a GPU run's adapter and optimizer costs ~0.3 s per checkpoint, and pruning looks at every kept
# checkpoint after each step: a file whose (device, inode, size, mtime) has not changed since this process
# hashed it is not hashed again (a rename from staging into place keeps all four).
_verified: dict[tuple[int, int, int, int], str] = {}


def _file_key(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _sha256(path: Path) -> str:
    key = _file_key(path)
    if key not in _verified:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def write_manifest(directory: Path, step: int) -> None:
    """Record every file under `directory` (the staging directory of step `step`); call it last."""
    files = {
        path.relative_to(directory).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(directory.rglob("*")) if path.is_file() and path.name != MANIFEST
    }
    # No trailing newline: then a manifest cut short at any byte is never valid JSON.
    (directory / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=1))


def problem(directory: Path, resumable: bool = True) -> str | None:
    """None if `directory` is an intact checkpoint, else what is wrong, naming the file.

    `resumable=True` (resume, `latest`, evaluation Jobs): the manifest and the trainer state must be there
    and every file must match the manifest. `resumable=False` (`agentrun eval --checkpoint`): a plain PEFT
    adapter is enough, but a manifest that is there must still match.
    """
    if not directory.is_dir():
        return f"{directory}: not a directory"
    found = _adapter_config_problem(directory / ADAPTER_CONFIG) or _safetensors_problem(directory / ADAPTER_WEIGHTS)
    manifest = directory / MANIFEST
    if not found and (resumable or manifest.is_file()):
        required = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, TRAINER_STATE) if resumable else (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
        found = _manifest_problem(directory, manifest, required)
    return found


def _manifest_problem(directory: Path, manifest: Path, required: tuple[str, ...]) -> str | None:
    if not manifest.is_file():
        return f"{manifest}: missing (the save did not finish, or the directory was not written by agentrun)"
    try:
        recorded: Any = json.loads(manifest.read_text())
        files = recorded["files"]
        entries = {str(name): (int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()}
        step = int(recorded["step"])
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
        return f"{manifest}: not a checkpoint manifest (unreadable or not {{step, files: {{name: {{size, sha256}}}}}})"
    match = STEP_DIR.match(directory.name)
    if match and int(match.group(1)) != step:
        return f"{manifest}: written for step {step}, but the directory is {directory.name}"
    for name in required:
        if name not in entries:
            return f"{directory / name}: not in the manifest"
    for name, (size, sha256) in entries.items():
        path = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"{manifest}: names a file outside the checkpoint ({name[:100]!r})"
        if not path.is_file():
            return f"{path}: missing"
        if path.stat().st_size != size:
            return f"{path}: {path.stat().st_size} bytes, {size} were written (truncated or replaced)"
        if _sha256(path) != sha256:
            return f"{path}: its contents differ from what was written (SHA-256 mismatch)"
    return None


def _adapter_config_problem(path: Path) -> str | None:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{path}: not valid JSON"
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        return f"{path}: not a LoRA adapter config (it needs \"peft_type\": \"LORA\")"
    if not isinstance(config.get("base_model_name_or_path"), str) or not config["base_model_name_or_path"]:
        return f"{path}: names no base model (base_model_name_or_path)"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """The safetensors layout: an 8-byte header length, a JSON header, then tensor bytes whose offsets
    cover the rest of the file exactly (a truncated file fails here even without a manifest)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            (header_length,) = struct.unpack("<Q", prefix) if len(prefix) == 8 else (-1,)
            if not 0 < header_length <= min(_MAX_SAFETENSORS_HEADER, size - 8):
                return f"{path}: not a safetensors file (truncated or damaged header)"
            header = json.loads(handle.read(header_length))
        ends = [int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"]
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{path}: not a safetensors file (damaged header)"
    if max(ends, default=0) != size - 8 - header_length:
        return f"{path}: {size} bytes, its header describes {8 + header_length + max(ends, default=0)} (truncated)"
    return None


def intact(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every intact checkpoint, oldest first; staging, damaged and foreign entries
    are left out."""
    return [(step, path) for step, path in _step_dirs(checkpoints_dir) if problem(path) is None]


def latest(checkpoints_dir: Path) -> Path | None:
    """The newest intact checkpoint: a damaged newer one is passed over, never picked."""
    return next((path for _, path in reversed(_step_dirs(checkpoints_dir)) if problem(path) is None), None)


def remove_leftovers(checkpoints_dir: Path) -> list[Path]:
    """Delete the staging directories a killed save left behind; call it only while nothing is saving."""
    found = [Path(entry.path) for entry in os.scandir(checkpoints_dir) if LEFTOVER.match(entry.name)] \
        if checkpoints_dir.is_dir() else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def _step_dirs(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for entry in os.scandir(checkpoints_dir):
        match = STEP_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)
