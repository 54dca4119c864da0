"""Choosing the next token of one sequence, and the log-probabilities a reply reports.

Each sequence samples with its own `torch.Generator`, so a request's tokens depend on its seed and its
own logits only, not on what else shares the batch (up to the float rounding of batched matmuls).
Reported log-probabilities are vLLM's default (`--logprobs-mode raw_logprobs`): the log-softmax of the
model's raw logits, before temperature and top-p, which is what a learner's forward pass recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_logprobs: int | None = None  # None: no logprobs at all; 0: the chosen token's only


def new_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded from the request (or from fresh entropy when it has no seed)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail outside the smallest set of tokens whose mass reaches `top_p` (keeps >= 1)."""
    sorted_probs, order = probs.sort(descending=True)  # (V,)
    outside = sorted_probs.cumsum(0) - sorted_probs >= top_p  # mass before a token already reached top_p
    sorted_probs[outside] = 0.0
    return torch.zeros_like(probs).scatter_(0, order, sorted_probs)


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """One token id from a row of logits (V,)."""
    if params.temperature == 0.0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)  # (V,)
    if params.top_p < 1.0:
        probs = _top_p_filter(probs, params.top_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def raw_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the vocabulary in float32: (..., V) -> (..., V)."""
    return torch.log_softmax(logits.float(), dim=-1)
