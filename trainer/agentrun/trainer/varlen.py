"""Attention over a packed row (`packing`): each token sees only the earlier tokens of its own sample.

The transformer body gets the row's position ids (restarting at every sample) and the samples' offsets
as transformers' flash-attention keyword arguments (`cu_seq_lens_q/k`, `max_length_q/k`), which reach
the attention function of every layer. Who honours them depends on the model's attention implementation:
- flash attention (`flash_attention_2/3/4`, hub kernels; GPUs): its varlen kernel, natively;
- anything else (sdpa, eager: CPUs, GPUs without flash-attn): inside `packed_attention`, the model runs
  `sdpa_per_sample`, causal SDPA once per sample. Outside it, transformers still keeps the samples
  apart (it reads restarting position ids as packing and builds a block-diagonal mask), but that mask
  is row x row and its attention covers the whole row: 4x slower than per-sample SDPA on a CPU here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from itertools import pairwise

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import repeat_kv
from transformers.utils.generic import is_flash_attention_requested

PER_SAMPLE_SDPA = "agentrun_sdpa_per_sample"


def sdpa_per_sample(
    module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
    sliding_window: int | None = None, cu_seq_lens_q: torch.Tensor | None = None, **_: object,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function for one packed row: queries (1, heads, T, dim), keys and values
    (1, kv_heads, T, dim) -> (1, T, heads, dim), causal within each sample of `cu_seq_lens_q`."""
    if cu_seq_lens_q is None or query.shape[0] != 1:
        raise ValueError(f"{PER_SAMPLE_SDPA} computes packed rows only: one row and its cu_seq_lens_q")
    if attention_mask is not None or sliding_window is not None:
        raise ValueError(f"{PER_SAMPLE_SDPA} supports neither attention masks nor sliding windows")
    # SDPA's own grouped-query option (enable_gqa) takes the slow math kernel on CPUs (2.3x here).
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)  # (1, heads, T, dim)
    pieces = [
        torch.nn.functional.scaled_dot_product_attention(
            *(x[:, :, start:end].contiguous() for x in (query, key, value)),  # strided views: ~15% slower on CPU
            dropout_p=dropout, scale=scaling, is_causal=True)  # (1, heads, n, dim)
        for start, end in pairwise(cu_seq_lens_q.tolist())
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None  # (1, T, heads, dim)


# No mask function is registered for it: transformers then passes attention_mask=None and builds no mask.
AttentionInterface.register(PER_SAMPLE_SDPA, sdpa_per_sample)


@contextlib.contextmanager
def packed_attention(lm: PreTrainedModel) -> Iterator[None]:
    """Inside it, the transformers model `lm` (not a PEFT wrapper: `logprobs.causal_lm`) computes packed
    rows at the cost of their samples, not of the whole row: its attention is `sdpa_per_sample` unless it
    is a flash attention already. Backward passes that recompute layers (gradient checkpointing) must run
    inside it too. Unpacked inputs fail inside it."""
    previous = lm.config._attn_implementation
    switch = not is_flash_attention_requested(lm.config)
    if switch:
        lm.set_attn_implementation(PER_SAMPLE_SDPA)
    try:
        yield
    finally:
        if switch:
            lm.set_attn_implementation(previous)


def hidden_states(body: torch.nn.Module, input_ids: torch.Tensor, position_ids: torch.Tensor,
                  cu_seq_lens: torch.Tensor) -> torch.Tensor:
    """The transformer body's last hidden states over one packed row (1, T) -> (1, T, H). No cache: with
    one, transformers would not read the position ids as packing (and the keys would be kept for nothing)."""
    longest = int((cu_seq_lens[1:] - cu_seq_lens[:-1]).max())
    return body(input_ids=input_ids, position_ids=position_ids, cu_seq_lens_q=cu_seq_lens, cu_seq_lens_k=cu_seq_lens,
                max_length_q=longest, max_length_k=longest, use_cache=False).last_hidden_state
