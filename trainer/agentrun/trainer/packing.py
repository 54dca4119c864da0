"""Sequence packing: a micro-batch is one row of several samples laid end to end, with no padding.

Padded micro-batches cost rows x the longest row, and GRPO samples differ a lot in length (an email
agent's run from ~600 to ~3000 tokens): the padding is compute spent on nothing, and on a GPU the
per-row shapes keep the kernels small. A packed row costs the sum of its samples' lengths.

The samples of a row stay independent:
- position ids restart at 0 for each sample, so rotary embeddings see every sample as if it were alone;
- attention stays inside a sample: the row carries the samples' offsets (`cu_seq_lens`, the varlen
  convention of flash attention), which `varlen` turns into attention bounds;
- the first token of each sample is never trained (nothing in its own sample predicts it).
The learner's log-probabilities, loss and gradients equal the padded micro-batches' (tests/trainer/test_packing.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from agentrun.trainer.samples import Sample


def plan_rows(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Sample indices grouped into rows of at most `token_budget` tokens, first-fit decreasing: each
    sample, longest first, goes into the first row with room for it, else starts a row. A sample longer
    than the budget is a row of its own. Every index appears exactly once."""
    rows: list[list[int]] = []
    loads: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, load in enumerate(loads) if load + lengths[index] <= token_budget), None)
        if row is None:
            rows.append([])
            loads.append(0)
            row = len(rows) - 1
        rows[row].append(index)
        loads[row] += lengths[index]
    return rows


def position_ids(lengths: Sequence[int]) -> torch.Tensor:
    """0, 1, ... restarting at each sample: (1, sum(lengths))."""
    return torch.cat([torch.arange(n) for n in lengths])[None]


def cu_seq_lens(lengths: Sequence[int]) -> torch.Tensor:
    """The samples' start offsets and the row's end, int32 as flash attention's varlen kernels take them:
    sample s spans [cu[s], cu[s + 1])."""
    return torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)


def row_tensors(batch: Sequence[Sample], device: str | torch.device) -> dict[str, torch.Tensor]:
    """The tensors of one packed row of `batch`: ids, boundaries, the trained mask and, per token, the
    server's and the old log-probabilities and the advantage. All (1, T) but `cu_seq_lens` (S + 1,)."""
    lengths = [len(s.ids) for s in batch]
    trained = [t for s in batch for t in [False, *s.trained[1:]]]  # a sample's first token has no prediction
    tensors = {
        "input_ids": torch.tensor([[i for s in batch for i in s.ids]]),
        "position_ids": position_ids(lengths),
        "cu_seq_lens": cu_seq_lens(lengths),
        "trained": torch.tensor([trained]),
        "server": torch.tensor([[p for s in batch for p in s.server_logprobs]]),
        "advantage": torch.tensor([[s.advantage for s in batch for _ in s.ids]]),
        "old": torch.tensor([[p for s in batch for p in (s.old_logprobs or [0.0] * len(s.ids))]]),
    }
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def split_row(values: torch.Tensor, cu: torch.Tensor) -> list[list[float]]:
    """Per-token `values` of a packed row (1, T), back to one list per sample."""
    bounds = cu.tolist()
    return [values[0, start:end].tolist() for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
