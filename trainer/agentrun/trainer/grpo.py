"""The GRPO maths (DESIGN §4), one named function per idea, each checked against hand-computed values.

A step's loss, read top to bottom:
    advantages   = group_advantages(rewards of one question's G trajectories)      # zero-variance groups dropped
    ratio        = exp(logp - old_logp)                                            # per trained token
    token_loss   = clipped_token_loss(logp, old_logp, advantage, eps_low, eps_high)
                   * importance_weights(old_logp, server_logp, clip)               # engine/learner mismatch
                   + kl_coef * kl_penalty(logp, ref_logp)                          # optional
    loss         = token_mean(token_loss, trained)                                  # over all trained tokens
"""

from __future__ import annotations

import torch

STD_EPSILON = 1e-4  # DESIGN §4: (r - mean) / (std + 1e-4)


def group_advantages(rewards: torch.Tensor, scale_by_std: bool = True) -> torch.Tensor:
    """Each trajectory's reward relative to its group: (r - mean) / (std + 1e-4), or r - mean.

    `rewards` is (groups, G). The std is the sample standard deviation (Bessel-corrected, as TRL's GRPO).
    """
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    if not scale_by_std:
        return centred
    return centred / (rewards.std(dim=-1, keepdim=True) + STD_EPSILON)


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """Which groups carry a learning signal: not every trajectory got the same reward. (groups,) bool."""
    return (rewards != rewards[..., :1]).any(dim=-1)


def clipped_token_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float
) -> torch.Tensor:
    """PPO's clipped surrogate per token, negated to be minimised, with separate low and high clips
    (DAPO's clip-higher: the ratio may rise to 1 + eps_high but fall only to 1 - eps_low).

    All arguments broadcast to the token shape; `advantages` is the trajectory's advantage per token.
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages
    return -torch.minimum(unclipped, clipped)


def importance_weights(old_logp: torch.Tensor, server_logp: torch.Tensor, clip: float) -> torch.Tensor:
    """Truncated importance sampling between the engine that sampled and the learner: the tokens were
    drawn from the server's distribution, the gradient is the learner's, so each token is weighted by
    min(pi_learner / pi_server, clip). No gradient flows through the weight."""
    return torch.clamp(torch.exp(old_logp - server_logp), max=clip).detach()


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate, Schulman's k3: exp(ref - logp) - (ref - logp) - 1 >= 0,
    unbiased and low-variance for samples drawn from pi."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def token_mean(values: torch.Tensor, trained: torch.Tensor, total_trained: int | None = None) -> torch.Tensor:
    """Token-level mean: the sum over trained tokens divided by their number. Long trajectories weigh
    in proportion to their tokens (DAPO), not one vote per sequence. `total_trained` lets micro-batches
    divide by the whole step's count, so that accumulated gradients equal the full batch's."""
    count = total_trained if total_trained is not None else int(trained.sum())
    return (values * trained).sum() / max(count, 1)
