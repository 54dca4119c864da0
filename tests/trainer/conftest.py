"""A toy policy for the learner's tests: the tiny model taught to answer a fixed prompt with token A or
token B about evenly, so that GRPO has something to choose between from the first step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from transformers import AutoModelForCausalLM, PreTrainedModel  # noqa: E402

PROMPT, GOOD, BAD = [11, 12, 13, 14], 100, 200


@pytest.fixture
def bimodal_policy(tiny_dir: Path) -> Callable[[], PreTrainedModel]:
    """A factory: each call returns a fresh, identical copy of the toy policy."""

    def make() -> PreTrainedModel:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_dir)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        ids = torch.tensor([[*PROMPT, GOOD], [*PROMPT, BAD]])
        for _ in range(25):
            logits = model(input_ids=ids).logits[:, -2]
            torch.nn.functional.cross_entropy(logits, ids[:, -1]).backward()
            optimizer.step()
            optimizer.zero_grad()
        return model

    return make
