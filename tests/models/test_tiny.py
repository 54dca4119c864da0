"""The tiny model is saved in the Hugging Face layout and loads through the Auto classes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM  # noqa: E402


def test_saved_in_the_hf_layout(tiny_dir: Path) -> None:
    names = {path.name for path in tiny_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja"} <= names
    assert not [name for name in names if name.startswith(".")]  # no staging leftovers


def test_loads_through_from_pretrained(tiny_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert isinstance(model, Qwen3ForCausalLM)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.tie_word_embeddings
    assert 1_500_000 < model.num_parameters() < 3_000_000  # a few million: trains on 2 CPU cores
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id


def test_same_seed_same_weights(tiny_dir: Path, tmp_path: Path) -> None:
    from agentrun.models import tiny

    again = AutoModelForCausalLM.from_pretrained(tiny.build_tiny(tmp_path / "again", seed=0))
    first = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert all((a == b).all() for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
