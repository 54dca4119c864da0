"""The shared-prefix forward pass: the loss and gradients of the full rows, and a prefix that is never
trained."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from agentrun.trainer import logprobs, prefix, sft  # noqa: E402
from agentrun.trainer.masking import Encoded  # noqa: E402

SHARED = [5, 6, 7] * 15  # 45 tokens: above MIN_SHARED


def rows() -> list[Encoded]:
    """Three conversations sharing SHARED, then an untrained token of their own and trained tokens,
    of different lengths (so the batch is right-padded)."""
    tails = [[11, 12, 13, 14], [21, 22, 23, 24, 25, 26, 27], [31, 32, 33]]
    return [Encoded(SHARED + tail, [False] * (len(SHARED) + 1) + [True] * (len(tail) - 1)) for tail in tails]


def test_the_prefix_stops_before_the_first_trained_token_and_its_predecessor() -> None:
    encoded = rows()
    assert prefix.shared_length([e.ids for e in encoded], [e.trained for e in encoded]) == len(SHARED)
    early = [Encoded(e.ids, [False] * 39 + [True] * (len(e.ids) - 39)) for e in encoded]
    assert prefix.shared_length([e.ids for e in early], [e.trained for e in early]) == 38  # token 38 is untrained
    assert prefix.shared_length([e.ids for e in encoded[:1]], [encoded[0].trained]) == 0  # one row: nothing shared
    short = [Encoded(SHARED[:20] + [1, 2, 3], [False] * 21 + [True] * 2), Encoded(SHARED[:20] + [4, 5], [False] * 22)]
    assert prefix.shared_length([e.ids for e in short], [e.trained for e in short]) == 0  # under MIN_SHARED


def test_loss_and_gradients_equal_the_full_rows(tiny_dir: Path) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    batch = sft.batch_tensors(rows(), pad_id=0)

    full = model(**batch).loss
    full.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    shared = prefix.forward(model, batch["input_ids"], batch["attention_mask"], len(SHARED), batch["labels"]).loss
    shared.backward()
    assert shared.item() == pytest.approx(full.item(), rel=1e-5)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_selected_logprobs_and_their_gradients_equal_the_full_rows_under_lora(tiny_dir: Path) -> None:
    torch.manual_seed(0)
    model = sft.add_lora(AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32), rank=4)
    for name, p in model.named_parameters():  # LoRA's B starts at zero: give the adapter an effect
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    batch = sft.batch_tensors(rows(), pad_id=0)
    selected = batch["labels"] != sft.IGNORE

    def scored(shared: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        logp = logprobs.selected_logprobs(model, batch["input_ids"], batch["attention_mask"], selected, shared=shared)
        (logp * torch.linspace(-1, 1, logp.numel())).sum().backward()  # a different weight per token
        return logp.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full, full_grads = scored(0)
    shared, shared_grads = scored(len(SHARED))
    assert full.numel() == int(selected.sum()) and full_grads.keys() == shared_grads.keys() and full_grads
    torch.testing.assert_close(shared, full, rtol=1e-5, atol=1e-6)
    for name, grad in full_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="shared prefix"):
        logprobs.selected_logprobs(model, batch["input_ids"], batch["attention_mask"], selected, shared=len(SHARED) + 2)
