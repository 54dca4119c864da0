"""FLOPs for MFU: the 4N rule, the head at trained positions only, causal attention; hand-computed."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from transformers import AutoModelForCausalLM  # noqa: E402

from agentrun.trainer import sft  # noqa: E402
from agentrun.trainer.flops import ModelFlops, peak_flops  # noqa: E402


def test_step_flops_by_hand() -> None:
    flops = ModelFlops(body_parameters=100, head_parameters=10, layers=2, attention_width=4)
    # 4 x 100 x (3 + 5) tokens + 4 x 10 x 4 trained + 6 x 2 layers x 4 x (9 + 25)
    assert flops.step([3, 5], trained_tokens=4) == 3200 + 160 + 1632


def test_model_flops_count_the_layers_not_the_embeddings_nor_lora(tiny_dir: Path) -> None:
    model = sft.add_lora(AutoModelForCausalLM.from_pretrained(tiny_dir), rank=8)
    base = model.get_base_model()
    flops = ModelFlops.of(model)
    layers = sum(p.numel() for n, p in base.model.layers.named_parameters() if "lora_" not in n)
    assert flops.body_parameters == layers + sum(p.numel() for p in base.model.norm.parameters())
    assert flops.head_parameters == base.get_output_embeddings().weight.numel()
    assert flops.layers == len(base.model.layers)
    assert flops.attention_width == base.model.layers[0].self_attn.q_proj.base_layer.out_features


def test_no_peak_is_claimed_for_a_cpu() -> None:
    assert peak_flops("cpu") is None
