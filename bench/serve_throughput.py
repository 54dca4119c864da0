"""Serving throughput: generated tokens/s of `agentrun serve` at 1, 4 and 16 concurrent requests, against
a sequential `model.generate` loop over the same model and the same prompts, in the same run.

The prompts are the email agent's first turn (its system prompt, its three tool schemas and a question),
so prefill costs what it costs in a rollout. Every request samples at temperature 1 with its own seed
and up to `--max-tokens` new tokens; the baseline samples the same way through `generate` (with a KV
cache, one prompt at a time: what a naive local rollout would do). The server runs in its own process
(as a model server does); the clients are asyncio + httpx in this one. Load average before and after is
reported, since other work on the machine shows up in every number.

Both sides run with the same number of torch threads, and the whole comparison is repeated for each
`--threads` value: on a 2-core machine that other jobs also load, 2 OpenMP threads measured ~10x
slower per forward than 1 (threads spin waiting for a core), which would make either side look bad.

A second, smaller measurement backs the server's choice of how a batch runs its rows' LoRA adapters
(`agentrun.serving.adapters`): the time of one decode forward of 16 rows through each way PEFT offers.

    PYTHONPATH=core:operator:trainer:evaluator python bench/serve_throughput.py \
        [--prompts 32] [--max-tokens 64] [--threads 1 2]

Writes a JSON report (bench/results/serve_throughput.json by default) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from agentrun import storage
from agentrun.environment import email_env, tools
from agentrun.models import loading
from agentrun import background

MODEL = "builtin:tiny"
CONCURRENCY = (1, 4, 16)
TOPICS = ("the budget review", "the pipeline outage", "Jeff's trip to Houston", "the Q3 gas contracts",
          "the California trading desk", "the new hire in legal", "the board offsite",
          "the audit findings")  # fmt: skip


def messages(index: int) -> list[dict[str, str]]:
    system = email_env.SYSTEM_PROMPT.format(max_turns=10, inbox="kay.mann@enron.com", today="2001-05-14")
    question = f"Question {index}: when was {TOPICS[index % len(TOPICS)]} first mentioned, and by whom?"
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def prompt_ids(tokenizer: Any, index: int) -> list[int]:
    text = tokenizer.apply_chat_template(
        messages(index), tools=tools.TOOL_SCHEMAS, add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer.encode(text, add_special_tokens=False))


def sequential(
    model: torch.nn.Module, tokenizer: Any, prompts: int, max_tokens: int, eos: list[int]
) -> dict[str, float]:
    """`generate` one prompt at a time; tokens are counted up to and including an end-of-turn token."""
    generated, started = 0, time.perf_counter()
    for index in range(prompts):
        ids = torch.tensor([prompt_ids(tokenizer, index)])
        torch.manual_seed(index)
        with torch.inference_mode():
            output = model.generate(ids, do_sample=True, temperature=1.0, top_p=1.0, max_new_tokens=max_tokens)
        new = output[0, ids.shape[1] :].tolist()
        ends = [position for position, token in enumerate(new) if token in eos]
        generated += ends[0] + 1 if ends else len(new)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "generated_tokens": generated, "tokens_per_second": generated / seconds}


async def concurrent(base_url: str, prompts: int, max_tokens: int, concurrency: int) -> dict[str, float]:
    """`prompts` requests, at most `concurrency` in flight at once."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as http:

        async def one(index: int) -> int:
            body = {"model": MODEL, "messages": messages(index), "tools": tools.TOOL_SCHEMAS, "temperature": 1.0,
                    "seed": index, "max_tokens": max_tokens}  # fmt: skip
            async with gate:
                reply = await http.post("/chat/completions", json=body)
            reply.raise_for_status()
            return int(reply.json()["usage"]["completion_tokens"])

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(index) for index in range(prompts)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "generated_tokens": sum(counts), "tokens_per_second": sum(counts) / seconds}


def compare(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """Baseline and server at each concurrency, all with `threads` torch threads."""
    torch.set_num_threads(threads)
    model = loading.load_model(MODEL, args.cache_root).eval()
    tokenizer = loading.load_tokenizer(MODEL, args.cache_root)
    eos = model.generation_config.eos_token_id
    baseline = sequential(model, tokenizer, args.prompts, args.max_tokens, list(eos))
    report: dict[str, Any] = {"sequential_generate": baseline}
    server_args = ["--model", MODEL, "--cache-root", str(args.cache_root), "--max-batch", str(max(CONCURRENCY)),
                   "--log-level", "warning"]  # fmt: skip
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the child's torch thread count
    with background.ProcessServer.module("agentrun.serving.cli", server_args) as server:
        asyncio.run(concurrent(server.base_url, 4, 4, 4))  # warm-up: connections, first allocations
        for concurrency in CONCURRENCY:
            report[f"serve_concurrency_{concurrency}"] = asyncio.run(
                concurrent(server.base_url, args.prompts, args.max_tokens, concurrency)
            )
    report["speedup_vs_sequential"] = {
        str(c): round(report[f"serve_concurrency_{c}"]["tokens_per_second"] / baseline["tokens_per_second"], 2)
        for c in CONCURRENCY
    }
    return report


def _milliseconds(step: Callable[[], object], repeats: int = 100) -> float:
    with torch.inference_mode():
        for _ in range(5):
            step()
        started = time.perf_counter()
        for _ in range(repeats):
            step()
    return round((time.perf_counter() - started) / repeats * 1000, 2)


def adapter_routing(base: torch.nn.Module, rows: int = 16) -> dict[str, float]:
    """Milliseconds per decode forward (`rows` sequences, one token each) by way of running adapters."""
    torch.set_num_threads(1)
    ids = torch.randint(8, 2000, (rows, 1))
    report = {"plain model": _milliseconds(lambda: base(input_ids=ids))}
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)  # the learner's shape
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT reads a property transformers 5 deprecates
        get_peft_model(copy.deepcopy(base), lora).save_pretrained(scratch)
        peft = PeftModel.from_pretrained(base, scratch, adapter_name="a").eval()
        peft.load_adapter(scratch, adapter_name="b")
    half = rows // 2

    def grouped() -> None:
        peft.set_adapter("a")
        peft(input_ids=ids[:half])
        peft.set_adapter("b")
        peft(input_ids=ids[half:])

    report["one adapter, adapter_names"] = _milliseconds(lambda: peft(input_ids=ids, adapter_names=["a"] * rows))
    report["base rows, adapter_names"] = _milliseconds(lambda: peft(input_ids=ids, adapter_names=["__base__"] * rows))
    mixed = ["a", "b"] * half
    report["two adapters mixed, adapter_names"] = _milliseconds(lambda: peft(input_ids=ids, adapter_names=mixed))
    report["two adapters grouped, two forwards"] = _milliseconds(grouped)
    peft.set_adapter("a")
    report["one adapter, set active"] = _milliseconds(lambda: peft(input_ids=ids))
    peft.base_model.disable_adapter_layers()
    report["base rows, adapter layers disabled"] = _milliseconds(lambda: peft(input_ids=ids))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads, both sides")
    parser.add_argument("--cache-root", type=Path, default=storage.DEFAULT_LOCAL_ROOT)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_throughput.json")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    model = loading.load_model(MODEL, args.cache_root)
    tokenizer = loading.load_tokenizer(MODEL, args.cache_root)
    report: dict[str, Any] = {
        "model": MODEL,
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "prompt_tokens_first": len(prompt_ids(tokenizer, 0)),
        "cpus": os.cpu_count(),
    }
    for threads in args.threads:
        report[f"threads_{threads}"] = compare(args, threads)
    report["adapter_routing_decode_ms"] = adapter_routing(model.eval())
    report["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
