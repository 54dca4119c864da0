"""The GRPO maths against hand-computed values."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from agentrun.trainer import grpo  # noqa: E402


def test_group_advantages_divide_by_the_sample_std() -> None:
    advantages = grpo.group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    std = math.sqrt(4 * 0.25 / 3)  # Bessel: the four squared deviations of 0.5 over n - 1 = 3
    expected = 0.5 / (std + 1e-4)
    assert advantages[0].tolist() == pytest.approx([expected, -expected, -expected, expected])


def test_group_advantages_without_std_are_centred_rewards() -> None:
    advantages = grpo.group_advantages(torch.tensor([[2.0, -1.0, 0.5], [1.0, 1.0, 1.0]]), scale_by_std=False)
    assert advantages.flatten().tolist() == pytest.approx([1.5, -1.5, 0.0, 0.0, 0.0, 0.0])


def test_equal_rewards_give_zero_advantage_not_nan() -> None:
    assert grpo.group_advantages(torch.tensor([[1.3, 1.3]])).tolist() == [[0.0, 0.0]]


def test_only_groups_with_different_rewards_are_informative() -> None:
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [-2.0, -2.0, -1.9]])
    assert grpo.informative_groups(rewards).tolist() == [False, True, True]


@pytest.mark.parametrize(("ratio", "advantage", "expected"), [
    (1.5, 1.0, -1.28),  # rose past 1 + eps_high with a positive advantage: clipped, no further push
    (1.5, -1.0, 1.5),  # rose with a negative advantage: unclipped, the full penalty
    (0.5, 1.0, -0.5),  # fell with a positive advantage: unclipped
    (0.5, -1.0, 0.8),  # fell past 1 - eps_low with a negative advantage: clipped at 0.8
    (1.0, 2.0, -2.0),  # on-policy: minus the advantage
])
def test_clipped_token_loss(ratio: float, advantage: float, expected: float) -> None:
    logp, old = torch.tensor([math.log(ratio)]), torch.tensor([0.0])
    loss = grpo.clipped_token_loss(logp, old, torch.tensor([advantage]), eps_low=0.2, eps_high=0.28)
    assert loss.item() == pytest.approx(expected)


def test_clipped_tokens_get_no_gradient() -> None:
    logp = torch.tensor([math.log(1.5), math.log(1.1)], requires_grad=True)
    grpo.clipped_token_loss(logp, torch.zeros(2), torch.ones(2), 0.2, 0.28).sum().backward()
    assert logp.grad is not None
    assert logp.grad.tolist() == pytest.approx([0.0, -1.1])  # d(-ratio)/dlogp = -ratio where unclipped


def test_importance_weights_are_truncated_and_detached() -> None:
    old = torch.tensor([math.log(3.0), math.log(0.5), 0.0], requires_grad=True)
    weights = grpo.importance_weights(old, torch.zeros(3), clip=2.0)
    assert weights.tolist() == pytest.approx([2.0, 0.5, 1.0])
    assert not weights.requires_grad


def test_kl_penalty_is_k3() -> None:
    kl = grpo.kl_penalty(torch.tensor([math.log(0.5), -1.0]), torch.tensor([math.log(0.25), -1.0]))
    assert kl.tolist() == pytest.approx([0.5 - math.log(0.5) - 1.0, 0.0])


def test_token_mean_counts_trained_tokens() -> None:
    values, trained = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert grpo.token_mean(values, trained).item() == pytest.approx(8 / 3)
    assert grpo.token_mean(values, trained, total_trained=4).item() == pytest.approx(2.0)
