"""The storage layout: paths match DESIGN §2 and checkpoint directories appear atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentrun import storage


def test_paths_follow_the_design(tmp_path: Path) -> None:
    layout = storage.Layout(tmp_path)
    assert layout.emails_db("enron") == tmp_path / "datasets/enron/emails.db"
    assert layout.checkpoint_dir("r1", 42) == tmp_path / "runs/r1/checkpoints/step-000042"
    assert layout.eval_result("r1", 42, "test") == tmp_path / "runs/r1/evals/step-000042-test.json"
    assert layout.trajectories("r1", 7) == tmp_path / "runs/r1/trajectories/step-000007.jsonl.gz"
    assert layout.run_json("r1") == tmp_path / "runs/r1/run.json"


def test_scenarios_file_prefers_parquet_then_jsonl(tmp_path: Path) -> None:
    assert storage.scenarios_file(tmp_path).name == "scenarios.parquet"
    (tmp_path / "scenarios.jsonl").write_text("")
    assert storage.scenarios_file(tmp_path).name == "scenarios.jsonl"
    (tmp_path / "scenarios.parquet").write_bytes(b"")
    assert storage.scenarios_file(tmp_path).name == "scenarios.parquet"


def test_atomic_directory_appears_complete(tmp_path: Path) -> None:
    final = tmp_path / "checkpoints" / "step-000001"
    with storage.atomic_directory(final) as staging:
        (staging / "adapter_config.json").write_text("{}")
        assert not final.exists()  # readers see nothing until the rename
    assert (final / "adapter_config.json").read_text() == "{}"
    assert [p.name for p in final.parent.iterdir()] == ["step-000001"]
    assert final.stat().st_mode & 0o777 == 0o755  # readable by the server and evaluator processes


def test_files_written_private_are_readable_by_other_users_once_in_place(tmp_path: Path) -> None:
    """safetensors writes 0600; a serving pod under another uid must still read the adapter."""
    final = tmp_path / "step-000001"
    with storage.atomic_directory(final) as staging:
        (staging / "sub").mkdir(mode=0o700)
        for path in (staging / "adapter_model.safetensors", staging / "sub" / "optim_states.pt"):
            path.write_bytes(b"x")
            path.chmod(0o600)
    assert (final / "adapter_model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (final / "sub" / "optim_states.pt").stat().st_mode & 0o777 == 0o644
    assert (final / "sub").stat().st_mode & 0o777 == 0o755


def test_replacing_a_directory_leaves_no_sibling_behind(tmp_path: Path) -> None:
    final = tmp_path / "step-000003"
    for content in ("damaged", "whole"):
        with storage.atomic_directory(final) as staging:
            (staging / "weights").write_text(content)
    assert (final / "weights").read_text() == "whole"
    assert [p.name for p in tmp_path.iterdir()] == ["step-000003"]


def test_failed_write_leaves_previous_checkpoint_untouched(tmp_path: Path) -> None:
    final = tmp_path / "step-000002"
    with storage.atomic_directory(final) as staging:
        (staging / "weights").write_text("good")
    with pytest.raises(RuntimeError), storage.atomic_directory(final) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("disk full")
    assert (final / "weights").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["step-000002"]
