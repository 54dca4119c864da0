"""The learner: chunked log-probabilities equal the full computation, micro-batches respect the token
budget, and the whole gradient path raises the reward of a tiny policy on a toy task."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from transformers import AutoModelForCausalLM  # noqa: E402

from agentrun.trainer import grpo, sft  # noqa: E402
from agentrun.trainer.learner import Learner, LearnerSettings, micro_batches, shard  # noqa: E402
from agentrun.trainer.logprobs import selected_logprobs  # noqa: E402
from agentrun.trainer.samples import Sample  # noqa: E402

from .toys import GOOD, PROMPT  # noqa: E402


def test_chunked_logprobs_and_gradients_equal_the_full_logits(tiny_dir: Path) -> None:
    torch.manual_seed(0)
    model = sft.add_lora(AutoModelForCausalLM.from_pretrained(tiny_dir), rank=4)
    ids = torch.randint(5, 500, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    selected = torch.zeros_like(ids, dtype=torch.bool)
    selected[0, 3:8] = True
    selected[1, 2:7] = True
    chunked = selected_logprobs(model, ids, mask, selected, chunk_tokens=3)
    chunked.sum().backward()
    chunked_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    full = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)[selected[:, 1:]]
    full.sum().backward()
    assert torch.allclose(chunked, full, atol=1e-5)
    for mine, reference in zip(chunked_grads, (p.grad for p in model.parameters() if p.requires_grad), strict=True):
        assert torch.allclose(mine, reference, atol=1e-5)


def test_gradient_checkpointing_changes_memory_not_the_update(tiny_dir: Path) -> None:
    from .toys import mixed_samples

    def trained(checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
        """The weights after two steps, and the bytes autograd kept for backward."""
        torch.manual_seed(0)
        model = sft.add_lora(AutoModelForCausalLM.from_pretrained(tiny_dir), rank=4)
        learner = Learner(model, LearnerSettings(lr=1e-2, gradient_checkpointing=checkpointing), pad_id=0)
        kept = [0]

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            kept[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            for _ in range(2):
                learner.step(mixed_samples())
        return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}, kept[0]

    (plain, kept), (recomputed, kept_checkpointed) = trained(False), trained(True)
    assert kept_checkpointed < kept / 3, (kept, kept_checkpointed)
    assert any(v.abs().sum() > 0 for k, v in plain.items() if "lora_B" in k)
    assert all(torch.allclose(plain[k], recomputed[k], atol=1e-6) for k in plain)


def test_micro_batches_stay_within_the_token_budget() -> None:
    samples = [Sample(ids=[1] * n, trained=[True] * n) for n in (100, 30, 60, 10, 250, 40)]
    batches = list(micro_batches(samples, token_budget=200))
    assert sorted(len(s.ids) for b in batches for s in b) == [10, 30, 40, 60, 100, 250]
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(len(s.ids) for s in batch) <= 200


def test_every_rank_runs_as_many_backward_passes_and_only_real_work_counts() -> None:
    batches = [[Sample(ids=[i, i], trained=[False, True])] for i in range(5)]
    rank0, rank1 = shard(batches, 0, 2), shard(batches, 1, 2)
    assert [(b[0].ids[0], w) for b, w in rank0] == [(0, 1.0), (2, 1.0), (4, 1.0)]
    assert [(b[0].ids[0], w) for b, w in rank1] == [(1, 1.0), (3, 1.0), (0, 0.0)]
    assert [w for b, w in shard(batches[:1], 3, 4)] == [0.0]  # more ranks than micro-batches
    assert shard(batches, 0, 1) == [(b, 1.0) for b in batches]


def test_grpo_raises_the_reward_of_a_tiny_policy(bimodal_policy: Callable[[], torch.nn.Module]) -> None:
    """Toy task: one token after a fixed prompt, from a policy that picks A or B about evenly; reward 1
    for A. GRPO on a LoRA adapter over sampled groups must move the policy to A."""
    prompt, good = PROMPT, GOOD
    model = sft.add_lora(bimodal_policy(), rank=8)
    learner = Learner(model, LearnerSettings(lr=5e-3), pad_id=0)

    def next_token_logprobs() -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)

    before = float(next_token_logprobs()[good].exp())
    assert 0.2 < before < 0.8
    for _ in range(6):
        logp = next_token_logprobs()
        tokens = torch.multinomial(logp.exp(), 8, replacement=True)
        rewards = (tokens == good).float()
        advantages = grpo.group_advantages(rewards[None])[0]
        samples = [Sample(ids=[*prompt, int(t)], trained=[False] * len(prompt) + [True],
                          server_logprobs=[0.0] * len(prompt) + [float(logp[t])], advantage=float(a))
                   for t, a in zip(tokens, advantages, strict=True)]
        metrics = learner.step(samples)
        assert metrics.trained_tokens == 8
        assert (metrics.grad_norm > 0) == bool(grpo.informative_groups(rewards[None]))
    after = float(next_token_logprobs()[good].exp())
    assert after > 0.8, (before, after)


def one_token_samples(model: torch.nn.Module, advantages: list[float]) -> list[Sample]:
    """Samples of GOOD after the toy prompt, server log-probabilities equal to the model's own."""
    with torch.no_grad():
        logp = float(torch.log_softmax(model(input_ids=torch.tensor([PROMPT])).logits[0, -1].float(), -1)[GOOD])
    return [Sample(ids=[*PROMPT, GOOD], trained=[False] * len(PROMPT) + [True],
                   server_logprobs=[0.0] * len(PROMPT) + [logp], advantage=a) for a in advantages]


def test_a_ratio_outside_the_clip_range_gives_the_clipped_loss_and_no_gradient(
    bimodal_policy: Callable[[], torch.nn.Module]
) -> None:
    """Hand values: old log-probability log(2) below the current one, so the ratio is 2. With advantage +1
    the loss is -min(2 * 1, (1 + 0.28) * 1) = -1.28 and the clipped branch carries no gradient; with
    advantage -1 it is -min(-2, -1.28) = 2, unclipped, with gradient."""
    model = sft.add_lora(bimodal_policy(), rank=4)
    learner = Learner(model, LearnerSettings(lr=1e-3, importance_correction=False), pad_id=0)
    for advantage, loss, moved in ((1.0, -1.28, False), (-1.0, 2.0, True)):
        [sample] = one_token_samples(model, [advantage])
        current = sample.server_logprobs[-1]
        sample.old_logprobs = [0.0] * len(PROMPT) + [current - float(torch.log(torch.tensor(2.0)))]
        metrics = learner.step([sample])
        assert metrics.loss == pytest.approx(loss, abs=1e-4)
        assert (metrics.grad_norm > 0) == moved


def test_several_updates_per_step_are_steps_against_the_policy_that_sampled(
    bimodal_policy: Callable[[], torch.nn.Module]
) -> None:
    """epochs=2 x minibatches=2: four optimizer steps, each on every other sample, every one measuring its
    ratio against the log-probabilities from before the first. The first step's ratio is 1 (loss = -mean
    advantage, exactly); the later ones see a moved policy, so their loss is not."""
    settings = LearnerSettings(lr=1e-2, epochs=2, minibatches=2, importance_correction=False)
    model = sft.add_lora(bimodal_policy(), rank=4)
    samples = one_token_samples(model, [1.0, -1.0, 1.0, -1.0])
    metrics = Learner(model, settings, pad_id=0).update(samples)
    assert metrics.trained_tokens == 2 * 4 and metrics.micro_batches == 4
    assert all(s.old_logprobs is None for s in samples)  # the caller's samples are left as they were

    by_hand = sft.add_lora(bimodal_policy(), rank=4)
    learner = Learner(by_hand, settings, pad_id=0)
    old = [dataclasses.replace(s, old_logprobs=logp) for s, logp in zip(samples, learner.policy_logprobs(samples))]
    losses = [learner.step(part).loss for _ in range(2) for part in (old[0::2], old[1::2])]
    # Advantages +1, ratio 1. The old log-probabilities were computed in a batch of 4 rows and these in
    # batches of 2: float32 reductions over other shapes differ in the last bits (1.9e-6 on a 2-core
    # AMD EPYC with 2 threads), far inside the 1e-4 by which a moved policy's ratio differs below.
    assert losses[0] == pytest.approx(-1.0, abs=1e-5)
    assert all(abs(loss - expected) > 1e-4 for loss, expected in zip(losses[1:], (1.0, -1.0, 1.0)))
    for (name, got), expected in zip(model.named_parameters(), by_hand.parameters(), strict=True):
        assert not got.requires_grad or torch.equal(got, expected), name


def test_one_update_per_step_is_the_plain_step(bimodal_policy: Callable[[], torch.nn.Module]) -> None:
    weights = []
    for method in ("update", "step"):
        model = sft.add_lora(bimodal_policy(), rank=4)
        getattr(Learner(model, LearnerSettings(lr=1e-2), pad_id=0), method)(one_token_samples(model, [1.0, -1.0]))
        weights.append({k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
