"""Packed micro-batches: the planner places every sample once within the budget, a packed row's
tensors mark its samples' boundaries, and the learner on packed rows computes the per-token
log-probabilities, loss and gradients of the padded micro-batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from transformers import AutoModelForCausalLM  # noqa: E402

from agentrun.trainer import packing, sft, varlen  # noqa: E402
from agentrun.spec.models import LearnerSpec, TrainingSpec  # noqa: E402
from agentrun.trainer.learner import Learner, LearnerSettings, _tensors  # noqa: E402
from agentrun.trainer.logprobs import causal_lm, selected_logprobs  # noqa: E402
from agentrun.trainer.samples import Sample  # noqa: E402

from .toys import mixed_samples  # noqa: E402


def test_first_fit_decreasing_by_hand() -> None:
    # Longest first: 5 opens row 0, 4 opens row 1, 3 fills row 0 (8), the next 3 joins row 1 (7),
    # 2 fits nowhere and opens row 2, 1 fills row 1 (8).
    assert packing.plan_rows([5, 4, 3, 3, 2, 1], token_budget=8) == [[0, 2], [1, 3, 5], [4]]
    assert packing.plan_rows([12, 3], token_budget=8) == [[0], [1]]  # too long for the budget: a row alone
    assert packing.plan_rows([], token_budget=8) == []


def test_every_sample_is_placed_once_and_rows_stay_within_the_budget() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 3000, (200,), generator=generator).tolist() + [5000, 4096]
    rows = packing.plan_rows(lengths, token_budget=4096)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert len(row) == 1 or sum(lengths[i] for i in row) <= 4096
    assert len(rows) <= 1.2 * sum(min(n, 4096) for n in lengths) / 4096 + 2  # rows are nearly full


def test_a_packed_row_restarts_positions_and_never_trains_a_sample_s_first_token() -> None:
    batch = [Sample(ids=[7, 8, 9], trained=[True, False, True], server_logprobs=[0.0, 0.0, -0.5], advantage=1.0),
             Sample(ids=[4, 5], trained=[True, True], server_logprobs=[0.0, -0.25], advantage=-2.0,
                    old_logprobs=[0.0, -0.125])]
    t = packing.row_tensors(batch, "cpu")
    assert t["input_ids"].tolist() == [[7, 8, 9, 4, 5]]
    assert t["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert t["cu_seq_lens"].tolist() == [0, 3, 5] and t["cu_seq_lens"].dtype == torch.int32
    assert t["trained"].tolist() == [[False, False, True, False, True]]
    assert t["server"].tolist() == [[0.0, 0.0, -0.5, 0.0, -0.25]]
    assert t["advantage"].tolist() == [[1.0, 1.0, 1.0, -2.0, -2.0]]
    assert t["old"].tolist() == [[0.0, 0.0, 0.0, 0.0, -0.125]]
    assert packing.split_row(t["server"], t["cu_seq_lens"]) == [[0.0, 0.0, -0.5], [0.0, -0.25]]


def lora_model(tiny_dir: Path) -> torch.nn.Module:
    """The tiny model with a LoRA adapter that changes its outputs (B starts at zero otherwise)."""
    torch.manual_seed(0)
    model = sft.add_lora(AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32), rank=4)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    return model


def lora_grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["per-sample sdpa", "transformers' block-diagonal mask"])
def test_packed_logprobs_and_gradients_equal_the_padded_rows(tiny_dir: Path, attention: str) -> None:
    """Samples of different lengths, one padded batch against one packed row, with the attention of
    the learner (`varlen.packed_attention`) and without it (transformers reads the restarting position
    ids and builds a block-diagonal mask): the same log-probability of every trained token, the same
    gradients of the LoRA weights.

    Attention that crossed samples fails both variants. Position ids that did not restart fail the
    second (transformers finds the samples by the restarts) and the row-tensor test above, not the first:
    rotary attention scores depend on position differences only, and per-sample attention never
    compares positions of two samples."""
    model = lora_model(tiny_dir)
    batch = mixed_samples()
    padded = _tensors(batch, pad_id=0, device="cpu")
    packed = packing.row_tensors(batch, "cpu")

    def scored(compute: Callable[[], torch.Tensor], context: contextlib.AbstractContextManager[None]
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        with context:
            logp = compute()
            (logp * torch.linspace(-1, 1, logp.numel())).sum().backward()  # a different weight per token
        return logp.detach(), lora_grads(model)

    switched = attention == "per-sample sdpa"
    expected, expected_grads = scored(
        lambda: selected_logprobs(model, padded["input_ids"], padded["attention_mask"], padded["trained"],
                                  chunk_tokens=16),
        contextlib.nullcontext())
    got, got_grads = scored(
        lambda: selected_logprobs(model, packed["input_ids"], None, packed["trained"], chunk_tokens=16,
                                  position_ids=packed["position_ids"], cu_seq_lens=packed["cu_seq_lens"]),
        varlen.packed_attention(causal_lm(model)) if switched else contextlib.nullcontext())
    assert got.numel() == expected.numel() == sum(sum(s.trained[1:]) for s in batch)
    # Row-major order is sample by sample in both layouts, so the tokens line up one to one.
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert expected_grads.keys() == got_grads.keys() and any("lora_A" in n for n in got_grads)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_packed_attention_refuses_unpacked_inputs_and_restores_the_model(tiny_dir: Path) -> None:
    lm = causal_lm(lora_model(tiny_dir))
    before = lm.config._attn_implementation
    with varlen.packed_attention(lm):
        assert lm.config._attn_implementation == varlen.PER_SAMPLE_SDPA
        with pytest.raises(ValueError, match="packed rows only"):
            lm(input_ids=torch.tensor([[5, 6, 7]]))
    assert lm.config._attn_implementation == before
    lm(input_ids=torch.tensor([[5, 6, 7]]))


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_a_packed_learner_step_equals_the_padded_one(tiny_dir: Path, kl_coef: float) -> None:
    """The same loss, metrics and gradients from a step on packed rows as from one on padded
    micro-batches (several of each: the budget is smaller than the batch), and the same policy
    log-probabilities (what `Learner.update` keeps as the old policy's)."""
    samples = mixed_samples()
    results = {}
    for packed in (False, True):
        model = lora_model(tiny_dir)
        learner = Learner(model, LearnerSettings(lr=1e-3, kl_coef=kl_coef, micro_batch_tokens=48, packing=packed),
                          pad_id=0)
        grads: dict[str, torch.Tensor] = {}
        update = learner.engine.step

        def recorded(update=update, grads=grads) -> float:  # the gradients the optimizer is about to use
            grads.update(lora_grads(model))
            return update()

        learner.engine.step = recorded  # type: ignore[method-assign]
        logprobs = learner.policy_logprobs(samples)
        results[packed] = (learner.step(samples), grads, logprobs)
    (padded, padded_grads, padded_logp), (packed, packed_grads, packed_logp) = results[False], results[True]
    assert packed.micro_batches < padded.micro_batches  # no padding: fewer forward passes for the budget
    assert packed.micro_batches > 1 and packed.trained_tokens == padded.trained_tokens
    for name in ("loss", "kl", "importance_weight", "grad_norm"):
        assert getattr(packed, name) == pytest.approx(getattr(padded, name), rel=1e-5, abs=1e-7), name
    assert (packed.kl > 0) == bool(kl_coef)
    assert padded_grads.keys() == packed_grads.keys() and padded_grads
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    for mine, reference in zip(packed_logp, padded_logp, strict=True):
        torch.testing.assert_close(torch.tensor(mine), torch.tensor(reference), rtol=0, atol=1e-5)


def test_unset_packing_packs_on_gpus_only_and_the_spec_overrides_it() -> None:
    def packs(device: str, **learner: object) -> bool:
        return LearnerSettings.from_spec(TrainingSpec(), LearnerSpec(**learner), device=device).packing

    assert packs("cuda:0") and not packs("cpu")
    assert packs("cpu", packing=True) and not packs("cuda:1", packing=False)
