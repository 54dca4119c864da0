"""A checkpoint is picked up only when every file is exactly what was written: arbitrary damage (truncation
at any byte, missing, swapped or altered files, a manifest cut short) is found and named, and `latest`
falls back to the newest intact step."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from agentrun import checkpoint_files as cf

EXAMPLES = int(os.environ.get("AGENTRUN_FUZZ_EXAMPLES", "300"))  # raise it for a longer local run


def safetensors_bytes(tensors: dict[str, bytes]) -> bytes:
    """A valid safetensors file of float32 tensors (the format, written by hand: no torch in the core)."""
    header, offset = {}, 0
    for name, data in tensors.items():
        header[name] = {"dtype": "F32", "shape": [len(data) // 4], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(tensors.values())


def write_checkpoint(checkpoints_dir: Path, step: int, seed: int = 0) -> Path:
    """A checkpoint as checkpoints.save lays it out (the trainer's files are opaque bytes here)."""
    directory = checkpoints_dir / f"step-{step:06d}"
    directory.mkdir(parents=True)
    (directory / cf.ADAPTER_CONFIG).write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "tiny"}))
    weights = {"a.lora_A.weight": bytes([seed + step]) * 64, "a.lora_B.weight": bytes([seed + step + 1]) * 32}
    (directory / cf.ADAPTER_WEIGHTS).write_bytes(safetensors_bytes(weights))
    (directory / cf.TRAINER_STATE).write_bytes(b"PK\x03\x04" + bytes([step]) * 40)
    (directory / "deepspeed" / "state").mkdir(parents=True)
    (directory / "deepspeed" / "state" / "optim_states.pt").write_bytes(bytes([step + 7]) * 48)
    cf.write_manifest(directory, step)
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_intact_checkpoint_has_no_problem_and_is_the_latest(tmp_path: Path) -> None:
    for step in (1, 2):
        write_checkpoint(tmp_path, step)
    assert cf.problem(tmp_path / "step-000002") is None
    assert cf.latest(tmp_path) == tmp_path / "step-000002"
    assert [step for step, _ in cf.intact(tmp_path)] == [1, 2]


@pytest.mark.parametrize(("damage", "named"), [
    (lambda d: (d / cf.ADAPTER_WEIGHTS).write_bytes(b""), cf.ADAPTER_WEIGHTS),
    (lambda d: (d / cf.TRAINER_STATE).write_bytes((d / cf.TRAINER_STATE).read_bytes()[:10]), cf.TRAINER_STATE),
    (lambda d: (d / cf.ADAPTER_CONFIG).write_text("[1, 2]"), cf.ADAPTER_CONFIG),
    (lambda d: (d / cf.MANIFEST).unlink(), cf.MANIFEST),
    (lambda d: (d / cf.MANIFEST).write_text('"just a string"'), cf.MANIFEST),
    (lambda d: (d / "deepspeed" / "state" / "optim_states.pt").unlink(), "optim_states.pt"),
])
def test_each_kind_of_damage_is_named_and_passed_over(tmp_path: Path, damage, named: str) -> None:  # noqa: ANN001
    write_checkpoint(tmp_path, 1)
    damage(write_checkpoint(tmp_path, 2))
    found = cf.problem(tmp_path / "step-000002")
    assert found is not None and named in found and "\n" not in found
    assert cf.latest(tmp_path) == tmp_path / "step-000001"


def test_an_adapter_swapped_in_from_another_step_is_found(tmp_path: Path) -> None:
    older, newer = write_checkpoint(tmp_path, 1), write_checkpoint(tmp_path, 2)
    shutil.copy(older / cf.ADAPTER_WEIGHTS, newer / cf.ADAPTER_WEIGHTS)  # same size, other weights
    assert "SHA-256" in (cf.problem(newer) or "")
    shutil.copytree(newer, tmp_path / "step-000003")  # a whole directory copied under another step's name
    assert "written for step 2" in (cf.problem(tmp_path / "step-000003") or "")


def test_a_plain_peft_adapter_is_enough_for_evaluation_but_not_for_resume(tmp_path: Path) -> None:
    directory = write_checkpoint(tmp_path, 1)
    (directory / cf.MANIFEST).unlink()
    (directory / cf.TRAINER_STATE).unlink()
    assert cf.problem(directory, resumable=False) is None
    assert cf.MANIFEST in (cf.problem(directory) or "")
    (directory / cf.ADAPTER_WEIGHTS).write_bytes((directory / cf.ADAPTER_WEIGHTS).read_bytes()[:-1])
    assert "truncated" in (cf.problem(directory, resumable=False) or "")  # the format itself is checked


def test_leftover_staging_directories_are_removed(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 1)
    (tmp_path / ".step-000002.tmp-abc").mkdir()
    (tmp_path / ".step-000001.old-xyz").mkdir()
    assert sorted(p.name for p in cf.remove_leftovers(tmp_path)) == [".step-000001.old-xyz", ".step-000002.tmp-abc"]
    assert [p.name for p in tmp_path.iterdir()] == ["step-000001"]


FILES = [cf.ADAPTER_CONFIG, cf.ADAPTER_WEIGHTS, cf.TRAINER_STATE, "deepspeed/state/optim_states.pt", cf.MANIFEST]


@st.composite
def damages(draw: st.DrawFn) -> tuple[str, ...]:
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "swap", "from-older", "extend"]))
    name = draw(st.sampled_from(FILES))
    return kind, name, draw(st.integers(0, 10_000)), draw(st.sampled_from(FILES)), draw(st.integers(1, 255))


def damage(directory: Path, older: Path, how: tuple[str, ...]) -> None:
    kind, name, position, other, xor = how
    path = directory / name
    data = path.read_bytes()
    if not data and kind in ("truncate", "flip"):
        return
    if kind == "truncate":
        path.write_bytes(data[: position % len(data)])
    elif kind == "flip":
        i = position % len(data)
        path.write_bytes(data[:i] + bytes([data[i] ^ xor]) + data[i + 1:])
    elif kind == "delete":
        path.unlink()
    elif kind == "swap":
        path.write_bytes((directory / other).read_bytes())
        (directory / other).write_bytes(data)
    elif kind == "from-older":
        path.write_bytes((older / name).read_bytes())
    else:
        path.write_bytes(data + b"\0" * (position % 100 + 1))


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(how=st.lists(damages(), min_size=1, max_size=3))
def test_arbitrary_damage_is_never_picked_up(tmp_path_factory: pytest.TempPathFactory, how: list) -> None:  # noqa: ANN001
    """Whatever is done to the newest checkpoint, it is picked only if every file still holds what was
    written (a flip inside the manifest's whitespace, a swap of a file with itself); else the older one is."""
    root = tmp_path_factory.mktemp("ckpt")
    older = write_checkpoint(root, 1)
    newest = write_checkpoint(root, 2)
    written, manifest = snapshot(newest), json.loads((newest / cf.MANIFEST).read_text())
    for one in how:
        if (newest / one[1]).exists() and (one[0] != "swap" or (newest / one[3]).exists()):
            damage(newest, older, one)
    found = cf.problem(newest)
    now = snapshot(newest)
    unchanged = {k: v for k, v in now.items() if k != cf.MANIFEST} == \
        {k: v for k, v in written.items() if k != cf.MANIFEST} and cf.MANIFEST in now
    if found is None:
        assert unchanged and json.loads(now[cf.MANIFEST]) == manifest
        assert cf.latest(root) == newest
    else:
        event(found.split(": ", 1)[1].split(" (")[0][:40])
        assert cf.latest(root) == older
