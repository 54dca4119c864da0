"""FLOPs of a LoRA learner step, for model FLOPs utilisation (MFU; DESIGN §4, §8).

With the base frozen, training costs ~4N per token (forward 2N, backward 2N for the activations' gradients;
the frozen weights get no gradient). On top of that:
- the head runs only at trained positions (logprobs.selected_logprobs): 4 x vocab x hidden per trained token;
- causal attention: forward QK^T and AV are L^2 x width each over a sequence of L tokens, backward twice
  that, so 6 x L^2 x width per layer per sequence.
LoRA's own matrices are under 1% of N at the usual ranks and are left out, as the usual 4N rule does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Dense bf16 tensor-core peaks (no sparsity), by the device name torch reports.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass(frozen=True)
class ModelFlops:
    body_parameters: int  # the transformer layers (no embedding table, no head)
    head_parameters: int  # vocab x hidden
    layers: int
    attention_width: int  # heads x head dim of the queries

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelFlops:
        """From a transformers causal LM (or a PEFT wrapper of one); LoRA parameters are not counted."""
        config = model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        frozen = sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
        embedding = config.vocab_size * config.hidden_size
        tied = getattr(config, "tie_word_embeddings", False)
        return cls(body_parameters=frozen - embedding * (1 if tied else 2), head_parameters=embedding,
                   layers=config.num_hidden_layers, attention_width=config.num_attention_heads * head_dim)

    def step(self, sequence_lengths: Sequence[int], trained_tokens: int) -> float:
        """FLOPs of forward + backward over sequences of these (unpadded) lengths."""
        tokens = sum(sequence_lengths)
        attention = 6 * self.layers * self.attention_width * sum(n * n for n in sequence_lengths)
        return 4 * self.body_parameters * tokens + 4 * self.head_parameters * trained_tokens + attention


def peak_flops(device: str | torch.device) -> float | None:
    """The bf16 peak of a known GPU, else None (no MFU is reported on CPUs or unknown devices)."""
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)
