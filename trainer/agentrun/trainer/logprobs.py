"""Log-probabilities of chosen tokens without materialising a batch's [tokens x vocab] float32 logits.

The transformer body runs once over the micro-batch; the language-model head and the log-softmax run
only at the positions that are trained, a chunk at a time, and each chunk is recomputed in backward
(activation checkpointing) instead of keeping its logits: peak memory is one chunk's logits, not the
batch's (DESIGN §8: most of a naive step's memory is those logits).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from agentrun.trainer import prefix, varlen

CHUNK_TOKENS = 1024  # positions per head + log-softmax chunk


def causal_lm(model: torch.nn.Module) -> PreTrainedModel:
    """The transformers model under a PEFT wrapper (its layers carry the LoRA modules), or the model."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model  # type: ignore[return-value]


def _chunk_logprobs(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()  # (N, V)
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)  # (N,)


def selected_logprobs(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, selected: torch.Tensor,
    chunk_tokens: int = CHUNK_TOKENS, recompute: bool = True, shared: int = 0,
    position_ids: torch.Tensor | None = None, cu_seq_lens: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(input_ids[b, t] | input_ids[b, :t]) at every (b, t) where `selected` is True, in row-major
    order. `input_ids`, `attention_mask` and `selected` are (B, T); position 0 cannot be selected.
    A packed row (`packing.row_tensors`) comes with its `position_ids` and `cu_seq_lens` instead of an
    attention mask: there the context of a token is its own sample's earlier tokens, and no sample's
    first token can be selected.

    `recompute=False` keeps every chunk's logits for backward instead: ZeRO-3 releases the gathered head
    weight after the forward pass, so a recomputation in backward would see an empty partition.
    `shared`: the rows' first `shared` tokens are the same and none of them, nor the next, is selected
    (`prefix.shared_length`): that prefix is computed once."""
    if selected[:, : shared + 1].any():
        raise ValueError("the first token of a sequence (or of its suffix after a shared prefix) has no prediction "
                         "to score")
    lm = causal_lm(model)
    if cu_seq_lens is not None:
        if shared or position_ids is None or selected[0, cu_seq_lens[:-1].long()].any():
            raise ValueError("a packed row needs its position ids, shares no prefix and never selects the first "
                             "token of a sample")
        hidden = varlen.hidden_states(lm.model, input_ids, position_ids, cu_seq_lens)  # (1, T, H)
    else:
        hidden = prefix.hidden_states(lm.model, input_ids, attention_mask, shared)  # (B, T - shared, H)
    scored = selected[:, shared + 1 :]
    predicting = hidden[:, :-1][scored]  # (N, H): the state before each selected token
    targets = input_ids[:, shared + 1 :][scored]  # (N,)
    head = lm.get_output_embeddings()
    pieces = []
    for start in range(0, targets.numel(), chunk_tokens):
        piece = (head, predicting[start : start + chunk_tokens], targets[start : start + chunk_tokens])
        if recompute and torch.is_grad_enabled():
            pieces.append(checkpoint(_chunk_logprobs, *piece, use_reentrant=False))
        else:
            pieces.append(_chunk_logprobs(*piece))
    return torch.cat(pieces) if pieces else hidden.new_zeros(0)
