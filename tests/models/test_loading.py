"""Resolving a base model: builtin:tiny is built once into the storage layout; ids and paths pass through."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402
from transformers import Qwen3ForCausalLM  # noqa: E402

from agentrun import storage  # noqa: E402
from agentrun.models import cli, loading, tiny  # noqa: E402


def test_builtin_tiny_is_built_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Path] = []
    real_build = tiny.build_tiny

    def counting_build(out: Path, seed: int = 0) -> Path:
        builds.append(out)
        return real_build(out, seed)

    monkeypatch.setattr(tiny, "build_tiny", counting_build)
    first = loading.resolve_model("builtin:tiny", tmp_path)
    second = loading.resolve_model("builtin:tiny", tmp_path)
    assert first == second == storage.Layout(tmp_path).model_dir(loading.BUILTINS["tiny"])
    assert builds == [first]
    assert isinstance(loading.load_model("builtin:tiny", tmp_path), Qwen3ForCausalLM)
    assert loading.load_tokenizer("builtin:tiny", tmp_path).chat_template
    assert builds == [first]


@pytest.mark.parametrize("base", ["Qwen/Qwen3-4B", "/models/my-qwen", "./relative/dir"])
def test_hub_ids_and_paths_pass_through(base: str, tmp_path: Path) -> None:
    assert loading.resolve_model(base, tmp_path) == base
    assert not (tmp_path / "models").exists()


def test_a_local_directory_loads_like_a_hub_id(tiny_dir: Path, tmp_path: Path) -> None:
    assert isinstance(loading.load_model(str(tiny_dir), tmp_path), Qwen3ForCausalLM)


def test_unknown_builtin_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(loading.UnknownBaseModel, match="builtin:tiny"):
        loading.resolve_model("builtin:huge", tmp_path)


def test_init_tiny_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.model, ["init-tiny", "--out", str(tmp_path / "tiny"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny" / "model.safetensors").is_file()
