"""Learner speed on a GPU: tokens/s, MFU and peak memory of one GRPO LoRA step on random-init Qwen3 shapes,
for the naive baseline of DESIGN §8 (transformers + PEFT, full-vocabulary float32 logits) and agentrun's
learner with the torch and DeepSpeed (ZeRO-2, one process) engines, measured side by side in one run.

    python bench/learner_gpu.py --shapes 1.7b 4b --out bench/results/learner_gpu.json    (the lent GPU)
    python bench/learner_gpu.py --shapes tiny --device cpu --rows 2 --seq 256 --steps 1  (a smoke run here)

MFU counts the same useful FLOPs for every variant (agentrun.trainer.flops: 4N per token, the head at
trained positions, causal attention) against the GPU's dense bf16 peak, so MFU ratios are speed ratios.
A variant that runs out of memory is recorded as such and the run goes on.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Qwen3Config

from agentrun.trainer import sft
from agentrun.trainer.flops import ModelFlops, peak_flops
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.samples import Sample

ROOT = Path(__file__).resolve().parent.parent
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Published Qwen3 shapes (config.json of Qwen/Qwen3-1.7B and Qwen/Qwen3-4B), and a tiny one for smoke runs.
SHAPES = {
    "1.7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=192, intermediate_size=576, num_hidden_layers=4, num_attention_heads=3,
                 num_key_value_heads=1, head_dim=64, vocab_size=2048, tie_word_embeddings=True),
}


def build(shape: str, device: str, rank: int, checkpointing: bool) -> torch.nn.Module:
    config = Qwen3Config(**SHAPES[shape], max_position_embeddings=32768, attn_implementation="sdpa")
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(device)
    model = sft.add_lora(model, rank=rank, alpha=2 * rank, target_modules=LORA_TARGETS)
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model


def batch(rows: int, seq: int, vocab: int) -> list[Sample]:
    generator = torch.Generator().manual_seed(0)
    samples = []
    for row in range(rows):
        ids = torch.randint(0, vocab, (seq,), generator=generator).tolist()
        samples.append(Sample(ids=ids, trained=[False] + [True] * (seq - 1), server_logprobs=[-1.0] * seq,
                              advantage=1.0 if row % 2 else -1.0))
    return samples


def naive_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, samples: list[Sample], device: str) -> None:
    """DESIGN §8's baseline: one forward over the rows, the full [rows x seq x vocab] logits in float32."""
    ids = torch.tensor([s.ids for s in samples], device=device)
    advantages = torch.tensor([s.advantage for s in samples], device=device)
    logits = model(input_ids=ids).logits.float()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    loss = -(logp * advantages[:, None]).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def variant_step(name: str, model: torch.nn.Module, args: argparse.Namespace) -> Callable[[list[Sample]], None]:
    if name == "naive":
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        return lambda samples: naive_step(model, optimizer, samples, args.device)
    settings = LearnerSettings(lr=1e-5, micro_batch_tokens=args.rows * args.seq, device=args.device,
                               engine="deepspeed" if name == "deepspeed" else "torch", zero_stage=2)
    learner = Learner(model, settings, pad_id=0)
    return lambda samples: learner.step(samples)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(shape: str, name: str, checkpointing: bool, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"shape": shape, "variant": name, "gradient_checkpointing": checkpointing,
                              "rows": args.rows, "seq": args.seq}
    model = None
    try:
        model = build(shape, args.device, args.lora_rank, checkpointing)
        flops_model = ModelFlops.of(model)
        step = variant_step(name, model, args)
        samples = batch(args.rows, args.seq, SHAPES[shape]["vocab_size"])
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        step(samples)  # warm-up: allocator, kernels, DeepSpeed's buckets
        synchronize(args.device)
        started = time.perf_counter()
        for _ in range(args.steps):
            step(samples)
        synchronize(args.device)
        seconds = (time.perf_counter() - started) / args.steps
        tokens = args.rows * args.seq
        flops = flops_model.step([args.seq] * args.rows, args.rows * (args.seq - 1))
        peak = peak_flops(args.device)
        result.update(seconds_per_step=seconds, tokens_per_second=tokens / seconds, flops_per_step=flops,
                      mfu=flops / seconds / peak if peak else None,
                      peak_memory_gb=torch.cuda.max_memory_allocated() / 1e9 if args.device.startswith("cuda") else None)
    except torch.OutOfMemoryError:
        result["error"] = "out of memory"
    finally:
        del model
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["1.7b", "4b"], choices=sorted(SHAPES))
    parser.add_argument("--variants", nargs="+", default=["naive", "torch", "deepspeed"])
    parser.add_argument("--checkpointing", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=3, help="measured steps after one warm-up step")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learner_gpu.json")
    args = parser.parse_args()
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    results = [measure(shape, name, mode == "on", args)
               for shape in args.shapes for mode in args.checkpointing for name in args.variants]
    report = {"date": date.today().isoformat(), "device": device_name, "torch": torch.__version__,
              "peak_bf16_flops": peak_flops(args.device), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
