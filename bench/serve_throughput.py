"""Serving throughput of `agentrun serve` and real vLLM side by side, against sequential `generate`.

Generated tokens/s of each server at 1, 16 and 32 concurrent requests (`--concurrency`), and of a
sequential `model.generate` loop over the same model and the same prompts, in the same run.

The prompts are the email agent's first turn (its system prompt, its three tool schemas and a question),
so prefill costs what it costs in a rollout. Every request samples at temperature 1 with its own seed
and up to `--max-tokens` new tokens; the baseline samples the same way through `generate` (with a KV
cache, one prompt at a time: what a naive local rollout would do). Both servers serve the same model
directory (builtin:tiny, built into `--cache-root` on first use) in float32, each in its own process(es)
(as a model server does); the clients are asyncio + httpx in this one. Both servers are started before
the first measurement and measured in turn at each concurrency level (the order alternating from level
to level), so that a change in the machine's other load between levels hits both alike; the idle one's
CPU use meanwhile is recorded, to show it does not compete. Load average before and after is reported,
since other work on the machine shows up in every number, and so are the servers' CPU seconds (their
whole process trees).

Real vLLM is the CPU build `make vllm` makes (testkit/vllm.py starts it with the operator's command
line: LoRA and the hermes tool parser on, the filesystem resolver on an empty adapters directory here);
`--servers agentrun` leaves it out. The embedded server gets the same adapters directory.

Every side runs with the same number of OpenMP threads, and the whole comparison is repeated for each
`--threads` value: on a 2-core machine that other jobs also load, 2 OpenMP threads measured ~10x
slower per forward than 1 (threads spin waiting for a core), which would make either side look bad.
vLLM binds its OpenMP threads to cores (VLLM_CPU_OMP_THREADS_BIND, here cores 0..threads-1); its API
server and engine-core scheduler run in other processes, as the embedded server's HTTP side runs in
other threads.

A second, smaller measurement backs the server's choice of how a batch runs its rows' LoRA adapters
(`agentrun.serving.adapters`): the time of one decode forward of 16 rows through each way PEFT offers.

    PYTHONPATH=core:trainer:evaluator:operator:. python bench/serve_throughput.py \
        [--prompts 32] [--max-tokens 64] [--threads 1 2] [--concurrency 1 16 32] [--servers agentrun vllm]

Writes a JSON report (bench/results/serve_throughput.json by default) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from agentrun import background, storage
from agentrun.environment import email_env, tools
from agentrun.models import loading
from testkit import vllm

MODEL = "builtin:tiny"
CONCURRENCY = (1, 16, 32)
SERVERS = ("agentrun", "vllm")
# Pause before each measurement: vLLM's worker keeps busy-polling its shared-memory queue for 1 s after
# its last read (shm_broadcast.SpinCondition), which would otherwise take a core from the next server.
SETTLE_SECONDS = 3.0
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


async def concurrent(
    base_url: str, model: str, prompts: int, max_tokens: int, concurrency: int
) -> dict[str, float]:
    """`prompts` requests, at most `concurrency` in flight at once; tokens as each server's usage counts them."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as http:

        async def one(index: int) -> int:
            body = {"model": model, "messages": messages(index), "tools": tools.TOOL_SCHEMAS, "temperature": 1.0,
                    "top_p": 1.0, "seed": index, "max_tokens": max_tokens}  # fmt: skip
            async with gate:
                reply = await http.post("/chat/completions", json=body)
            reply.raise_for_status()
            return int(reply.json()["usage"]["completion_tokens"])

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(index) for index in range(prompts)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "generated_tokens": sum(counts), "tokens_per_second": sum(counts) / seconds}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its live descendants, and of the children they have
    waited for (Linux /proc; 0 where it cannot be read)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(entry.name)] = fields
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:  # fields from the state on: utime 11, stime 12, cutime 13, cstime 14
            total += sum(int(value) for value in stats[current][11:15]) / ticks
        todo.extend(children.get(current, []))
    return total


def vllm_server(model_dir: Path, adapters_dir: Path, threads: int) -> background.ProcessServer:
    """Real vLLM (testkit/vllm.py) with its OpenMP threads bound to cores 0..threads-1; `VllmMissingError`
    (which names `make vllm`) when its environment is not built."""
    return vllm.server(model_dir, adapters_dir,
                       env={"VLLM_CPU_OMP_THREADS_BIND": "0" if threads == 1 else f"0-{threads - 1}"})


@contextlib.contextmanager
def started(name: str, model_dir: Path, adapters_dir: Path, threads: int, max_batch: int,
            cache_root: Path) -> Iterator[background.ProcessServer]:  # fmt: skip
    if name == "agentrun":
        args = ["--model", str(model_dir), "--adapters-dir", str(adapters_dir), "--cache-root", str(cache_root),
                "--max-batch", str(max_batch), "--log-level", "warning"]  # fmt: skip
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the child's torch thread count
        with background.ProcessServer.module("agentrun.serving.cli", args).start() as server:
            yield server
    else:
        with vllm_server(model_dir, adapters_dir, threads).start(vllm.START_SECONDS) as server:
            yield server


def compare(args: argparse.Namespace, threads: int, model_dir: Path) -> dict[str, Any]:
    """Baseline, then each server at each concurrency, all with `threads` OpenMP threads."""
    torch.set_num_threads(threads)
    model = loading.load_model(str(model_dir)).eval()
    tokenizer = loading.load_tokenizer(str(model_dir))
    eos = model.generation_config.eos_token_id
    baseline = sequential(model, tokenizer, args.prompts, args.max_tokens, list(eos))
    report: dict[str, Any] = {"sequential_generate": baseline, "servers": {}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="agentrun-bench-adapters-") as adapters, contextlib.ExitStack() as stack:
        servers = {}
        for name in args.servers:
            launched = time.perf_counter()
            servers[name] = stack.enter_context(
                started(name, model_dir, Path(adapters), threads, max(args.concurrency), args.cache_root)
            )
            report["servers"][name] = {"start_seconds": round(time.perf_counter() - launched, 1)}
            if name == "vllm":
                version = httpx.get(servers[name].base_url.removesuffix("/v1") + "/version", timeout=30)
                report["servers"][name]["version"] = version.json().get("version")
        for server in servers.values():  # warm-up: connections, first allocations, compiled kernels
            asyncio.run(concurrent(server.base_url, str(model_dir), 4, 4, 4))
        for level, concurrency in enumerate(args.concurrency):
            order = list(servers) if level % 2 == 0 else list(servers)[::-1]  # neither always goes first
            for name in order:
                time.sleep(SETTLE_SECONDS)
                cpu_before = {other: tree_cpu_seconds(server.pid) for other, server in servers.items()}
                load = os.getloadavg()[0]
                run = asyncio.run(concurrent(servers[name].base_url, str(model_dir), args.prompts, args.max_tokens,
                                             concurrency))  # fmt: skip
                cpu = {other: round(tree_cpu_seconds(server.pid) - cpu_before[other], 2)
                       for other, server in servers.items()}  # fmt: skip
                report["runs"].append({
                    "server": name, "concurrency": concurrency, **run,
                    "vs_sequential": round(run["tokens_per_second"] / baseline["tokens_per_second"], 2),
                    "server_cpu_seconds": cpu.pop(name),
                    "idle_server_cpu_seconds": cpu,  # the other server's, meanwhile: it should be ~0
                    "load_average_at_start": round(load, 2),
                })  # fmt: skip
    by = {(run["server"], run["concurrency"]): run["tokens_per_second"] for run in report["runs"]}
    if set(SERVERS) <= set(args.servers):
        report["vllm_over_agentrun"] = {str(c): round(by["vllm", c] / by["agentrun", c], 2) for c in args.concurrency}
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
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="OpenMP threads, every side")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY),
                        help="requests in flight at once, one measurement per value and server")  # fmt: skip
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS),
                        help="vllm needs the environment `make vllm` builds")  # fmt: skip
    parser.add_argument("--cache-root", type=Path, default=storage.DEFAULT_LOCAL_ROOT)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_throughput.json")
    args = parser.parse_args()
    args.servers = [name for name in SERVERS if name in args.servers]  # in a fixed order, once each
    if "vllm" in args.servers:
        try:
            vllm.vllm_bin()
        except vllm.VllmMissingError as error:
            parser.exit(2, f"{parser.prog}: {error}; or leave it out with --servers agentrun\n")

    load_before = os.getloadavg()[0]
    # one directory for every side (tiny.build_tiny(seed=0) makes it on first use): vLLM serves a directory
    model_dir = Path(loading.resolve_model(MODEL, args.cache_root)).resolve()
    model = loading.load_model(str(model_dir))
    tokenizer = loading.load_tokenizer(str(model_dir))
    report: dict[str, Any] = {
        "model": MODEL,
        "model_dir": str(model_dir),
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "prompt_tokens_first": len(prompt_ids(tokenizer, 0)),
        "servers": args.servers,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
    }
    for threads in args.threads:
        report[f"threads_{threads}"] = compare(args, threads, model_dir)
    report["adapter_routing_decode_ms"] = adapter_routing(model.eval())
    report["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
