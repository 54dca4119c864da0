"""The served model for these tests: the builtin tiny model, and LoRA adapters whose output is known.

The tiny model is randomly initialised, so its text is noise; to test tool calls, the fixture teaches a
LoRA adapter (a few seconds of training) to answer every prompt with one fixed hermes tool call. That
adapter is also the one whose outputs must differ from the base model's.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agentrun.models import loading, tiny
from agentrun import background
from agentrun.serving import build

BASE = "builtin:tiny"
TOOL_ADAPTER = "step-000001"  # answers with TOOL_CALL
OTHER_BASE_ADAPTER = "step-000002"  # the same weights, declared for another base model
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "search_emails",
            "description": "Search the inbox.",
            "parameters": {
                "type": "object",
                "properties": {"keywords": {"type": "array", "items": {"type": "string"}}},
            },
        },
    }
]
TOOL_ARGUMENTS = {"keywords": ["budget", "meeting"]}
TOOL_CALL = '<tool_call>\n{"name": "search_emails", "arguments": ' + json.dumps(TOOL_ARGUMENTS) + "}\n</tool_call>"
LAST_MLP_OUT = f"layers.{tiny.TINY.layers - 1}.mlp.down_proj"
QUESTIONS = ("When is the budget meeting?", "Who sent the report?", "What did Jeff say?")


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("storage")
    loading.resolve_model(BASE, root)  # built once per session (~20 s: the tokenizer is trained)
    return root


@pytest.fixture(scope="session")
def tokenizer(cache_root: Path) -> PreTrainedTokenizerBase:
    return loading.load_tokenizer(BASE, cache_root)


@pytest.fixture(scope="session")
def base_model(cache_root: Path) -> PreTrainedModel:
    return loading.load_model(BASE, cache_root).eval()


def chat(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You answer questions about an inbox."},
        {"role": "user", "content": question},
    ]


def prompt_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], tools: Any = None) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    return list(tokenizer.encode(str(text), add_special_tokens=False))


def _train_tool_adapter(cache_root: Path, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """A LoRA adapter on the last layer's MLP output that answers each of QUESTIONS (with TOOLS) with
    TOOL_CALL, greedily.

    Training the whole network through 150-token prompts takes minutes on 2 shared cores. The last
    layer's `down_proj` output only moves the final hidden state of its own position, so teacher-forced
    features are exactly those of greedy generation once it follows the answer: the adapter is fitted on
    cached features (its input x and the residual r around it) in a few seconds.
    """
    model = loading.load_model(BASE, cache_root).eval()
    mlp = model.model.layers[-1].mlp
    answer = tokenizer.encode(TOOL_CALL + "<|im_end|>", add_special_tokens=False)
    captured: list[torch.Tensor] = []
    hooks = [
        mlp.down_proj.register_forward_hook(lambda _m, args, output: captured.extend((args[0], output))),
        model.model.norm.register_forward_hook(lambda _m, args, _o: captured.append(args[0])),
    ]
    inputs, residuals = [], []
    with torch.no_grad():
        for question in QUESTIONS:
            prompt = prompt_ids(tokenizer, chat(question), TOOLS)
            model(input_ids=torch.tensor([prompt + answer]))
            x, down, hidden = captured
            captured.clear()
            positions = slice(len(prompt) - 1, len(prompt) + len(answer) - 1)  # those predicting the answer
            inputs.append(x[0, positions])
            residuals.append((hidden - down)[0, positions])
    for hook in hooks:
        hook.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT reads a property transformers 5 deprecates
        peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=[LAST_MLP_OUT]))
    x, residual = torch.cat(inputs), torch.cat(residuals)
    targets = torch.tensor(answer * len(QUESTIONS))
    optimizer = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(300):
        logits = model.lm_head(model.model.norm(residual + mlp.down_proj(x)))  # down_proj is now LoRA's
        torch.nn.functional.cross_entropy(logits, targets).backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.save_pretrained(out)
    _declare_base(out, BASE)  # the served name, not the cache directory the weights came from


def attach(model: PreTrainedModel, adapter: Path) -> PeftModel:
    """`PeftModel.from_pretrained`, without the FutureWarning PEFT triggers inside transformers 5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, adapter).eval()


def _declare_base(adapter: Path, base: str) -> None:
    config_file = adapter / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "base_model_name_or_path": base}))


@pytest.fixture(scope="session")
def adapters_dir(
    cache_root: Path, tokenizer: PreTrainedTokenizerBase, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    _train_tool_adapter(cache_root, tokenizer, root / TOOL_ADAPTER)
    shutil.copytree(root / TOOL_ADAPTER, root / OTHER_BASE_ADAPTER)
    _declare_base(root / OTHER_BASE_ADAPTER, "Qwen/Qwen3-0.6B")
    return root


@pytest.fixture(scope="module")
def server(cache_root: Path, adapters_dir: Path) -> Iterator[background.ThreadServer]:
    app = build.create_app(BASE, adapters_dir=adapters_dir, max_batch=8, max_loras=2, cache_root=cache_root)
    with background.ThreadServer(app) as running:
        yield running
