"""The served model for these tests: the builtin tiny model, and LoRA adapters whose output is known, on
both servers the contract holds for: `agentrun serve` (the embedded server) and real vLLM (its CPU build,
testkit/vllm.py), each serving the model by its directory, as the operator's Deployment serves a run's base.

The tiny model is randomly initialised, so its text is noise; to test tool calls, the fixture teaches a
LoRA adapter (a few seconds of training) to answer every prompt with one fixed hermes tool call. That
adapter is also the one whose outputs must differ from the base model's.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agentrun import background
from agentrun.models import loading, tiny
from agentrun.serving import build
from agentrun.serving.engine import Engine
from testkit import vllm

BUILTIN = "builtin:tiny"
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
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny model's directory: the name both servers serve it by, and the base its adapters declare."""
    root = tmp_path_factory.mktemp("storage")
    return str(loading.resolve_model(BUILTIN, root))  # built once per session (~20 s: the tokenizer is trained)


@pytest.fixture(scope="session")
def tokenizer(base: str) -> PreTrainedTokenizerBase:
    return loading.load_tokenizer(base)


@pytest.fixture(scope="session")
def base_model(base: str) -> PreTrainedModel:
    return loading.load_model(base).eval()


def chat(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You answer questions about an inbox."},
        {"role": "user", "content": question},
    ]


def prompt_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], tools: Any = None) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    return list(tokenizer.encode(str(text), add_special_tokens=False))


def _train_tool_adapter(base: str, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """A LoRA adapter on the last layer's MLP output that answers each of QUESTIONS (with TOOLS) with
    TOOL_CALL, greedily.

    Training the whole network through 150-token prompts takes minutes on 2 shared cores. The last
    layer's `down_proj` output only moves the final hidden state of its own position, so teacher-forced
    features are exactly those of greedy generation once it follows the answer: the adapter is fitted on
    cached features (its input x and the residual r around it) in a few seconds.
    """
    model = loading.load_model(base).eval()
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
    _declare_base(out, base)


def attach(model: PreTrainedModel, adapter: Path) -> PeftModel:
    """`PeftModel.from_pretrained`, without the FutureWarning PEFT triggers inside transformers 5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, adapter).eval()


def _declare_base(adapter: Path, base: str) -> None:
    config_file = adapter / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "base_model_name_or_path": base}))


@pytest.fixture(scope="session")
def adapters_dir(base: str, tokenizer: PreTrainedTokenizerBase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    _train_tool_adapter(base, tokenizer, root / TOOL_ADAPTER)
    shutil.copytree(root / TOOL_ADAPTER, root / OTHER_BASE_ADAPTER)
    _declare_base(root / OTHER_BASE_ADAPTER, "Qwen/Qwen3-0.6B")
    return root


@dataclass(frozen=True)
class Served:
    """One of the two servers, serving `base` with the resolver on the adapters directory."""

    kind: str  # "agentrun" or "vllm"
    base_url: str  # .../v1
    engine: Engine | None  # the embedded server's engine, whose counters some tests read

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


@pytest.fixture(scope="module", params=["agentrun", "vllm"])
def server(request: pytest.FixtureRequest, base: str, adapters_dir: Path) -> Iterator[Served]:
    if request.param == "agentrun":
        app = build.create_app(base, adapters_dir=adapters_dir, max_batch=8, max_loras=2)
        with background.ThreadServer(app) as running:
            yield Served("agentrun", running.base_url, app.state.engine)
    else:
        with vllm.server(Path(base), adapters_dir, max_loras=2).start(vllm.START_SECONDS) as process:
            yield Served("vllm", process.base_url, None)
