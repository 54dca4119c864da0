"""One forward pass for the prompt prefix that a batch of conversations shares.

Every demonstration of a task starts with the same tools and system prompt (283 of the email agent's
~650 tokens on the tiny tokenizer, whose template puts the tools first; the rest of the system prompt
names the inbox and the date), and
every GRPO sample of one question shares its whole prompt with the group. Computing that prefix once
per batch instead of once per row, then letting every row's suffix attend to its keys and values
(expanded to the batch), gives the same loss and the same gradients (they flow back through the
shared keys and values) for less compute: tested against the full rows in tests/trainer/test_prefix.py.

The prefix is cut so that none of its tokens is trained and the first suffix token is not trained
either: its prediction would need the prefix's last logits, which the suffix pass does not compute.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

MIN_SHARED = 32  # a shorter shared prefix saves less than the second forward call costs


def shared_length(rows: Sequence[Sequence[int]], trained: Sequence[Sequence[bool]]) -> int:
    """The longest prefix all `rows` share such that no token in it, nor the token after it, is trained,
    and every row keeps at least two tokens after it; 0 if that is under MIN_SHARED."""
    if len(rows) < 2:
        return 0
    limit = min(len(row) for row in rows) - 2
    length = 0
    first = rows[0]
    while length < limit and all(row[length] == first[length] for row in rows):
        length += 1
    length = min(length, min(_first_trained(mask) for mask in trained) - 1)
    return length if length >= MIN_SHARED else 0


def _first_trained(mask: Sequence[bool]) -> int:
    return next((index for index, value in enumerate(mask) if value), len(mask))


def _suffix_inputs(module: torch.nn.Module, input_ids: torch.Tensor, shared: int) -> dict[str, object]:
    """The keyword arguments that run `module` (a causal LM or its body) on the suffixes: the prefix's
    keys and values, computed from the first row and expanded to every row, and the suffix positions."""
    rows, width = input_ids.shape
    cache = module(input_ids=input_ids[:1, :shared], use_cache=True).cache
    cache.batch_repeat_interleave(rows)  # (1, heads, shared, dim) -> (rows, ...): autograd sees the copy
    positions = torch.arange(shared, width, device=input_ids.device).expand(rows, -1)
    return {"input_ids": input_ids[:, shared:], "cache": cache, "position_ids": positions, "use_cache": False}


def forward(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, shared: int,
            labels: torch.Tensor | None = None) -> CausalLMOutputWithPast:
    """The causal LM on right-padded rows (B, T) whose first `shared` tokens are the same in every row:
    the prefix once, the suffixes (B, T - shared) on top of it. Logits (and the loss, from `labels` of
    shape (B, T)) cover the suffix positions only; with `shared` 0 this is the plain forward."""
    if shared == 0:
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    return model(attention_mask=attention_mask, labels=None if labels is None else labels[:, shared:],
                 **_suffix_inputs(model, input_ids, shared))


def hidden_states(body: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  shared: int) -> torch.Tensor:
    """The transformer body's last hidden states at positions shared..T-1: (B, T - shared, H)."""
    if shared == 0:
        return body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return body(attention_mask=attention_mask, **_suffix_inputs(body, input_ids, shared)).last_hidden_state
