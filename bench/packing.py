"""Packed against padded micro-batches: GRPO learner steps (LoRA r8, fp32, builtin:tiny) on samples shaped
like the email agent's, side by side in one process, alternating (the machines here are noisy).

Samples: 8 questions x 4. Without --dataset, shaped like a real model's (a Qwen3 template): each
700-3000 tokens (uniform), a 576-token tool block common to all, a 180-token question per group, then
alternating generated (trained, 20-120 tokens) and tool (untrained, 50-300 tokens) spans; random ids.
With --dataset DIR (a built mailbox, e.g. the quickstart's): the oracle's demonstrations on its training
questions in the tiny model's template, as the quickstart trains them (shorter rows, a larger shared
share). Variants: padded rows with the shared prompt prefix computed once (the padded learner as it
runs), padded rows without it, packed rows (`agentrun.trainer.packing`).

    PYTHONPATH=core:trainer:evaluator python bench/packing.py [--dataset DIR] [--repeats 3] [--budget 16384] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from random import Random
from statistics import median

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentrun import demonstrations
from agentrun.evaluator import benchmark
from agentrun.models import tiny
from agentrun.trainer import masking, packing, sft
from agentrun.trainer.learner import Learner, LearnerSettings, micro_batches
from agentrun.trainer.samples import Sample

VARIANTS = ("padded, shared prefix", "padded", "packed")


def grpo_samples(seed: int = 0, questions: int = 8, group: int = 4, vocab: int = 2048) -> list[Sample]:
    rng = Random(seed)
    tools = [rng.randrange(5, vocab) for _ in range(576)]
    samples = []
    for _ in range(questions):
        prompt = tools + [rng.randrange(5, vocab) for _ in range(180)]
        for _ in range(group):
            length = rng.randint(700, 3000)
            ids = (prompt + [rng.randrange(5, vocab) for _ in range(length)])[:length]
            trained = [False] * length
            start = len(prompt)
            while start < length:
                generated = rng.randint(20, 120)
                trained[start : start + generated] = [True] * len(trained[start : start + generated])
                start += generated + rng.randint(50, 300)
            samples.append(Sample(ids=ids, trained=trained, server_logprobs=[-1.0] * length, advantage=rng.gauss(0, 1)))
    return samples


def demonstration_samples(dataset: Path, model_dir: Path, count: int = 32, seed: int = 0) -> list[Sample]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    shown = demonstrations.oracle_for(dataset, benchmark.training_scenarios(dataset, 250)[:64], seed=seed)
    rows = [masking.encode(tokenizer, d.messages, d.tools) for d in shown]
    rng = Random(seed)
    return [Sample(r.ids, r.trained, [-1.0] * len(r.ids), rng.gauss(0, 1)) for r in rng.sample(rows, count)]


def learner(model_dir: Path, variant: str, budget: int) -> Learner:
    torch.manual_seed(0)
    model = sft.add_lora(AutoModelForCausalLM.from_pretrained(model_dir), rank=8)
    settings = LearnerSettings(lr=1e-5, micro_batch_tokens=budget, packing=variant == "packed")
    made = Learner(model, settings, pad_id=0)
    made.share_prefix = variant == "padded, shared prefix"
    return made


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=16384, help="learner.microBatchTokens")
    parser.add_argument("--dataset", type=Path, help="a built mailbox: train on its oracle demonstrations")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "packing.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentrun-packing-") as scratch:
        model_dir = tiny.build_tiny(Path(scratch) / "tiny")
        samples = demonstration_samples(args.dataset, model_dir) if args.dataset else grpo_samples()
        lengths = [len(s.ids) for s in samples]
        padded_tokens = sum(len(b) * max(len(s.ids) for s in b) for b in micro_batches(samples, args.budget))
        learners = {variant: learner(model_dir, variant, args.budget) for variant in VARIANTS}
        seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        micro: dict[str, int] = {}
        for repeat in range(args.repeats):
            for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
                metrics = learners[variant].step(samples)
                seconds[variant].append(metrics.seconds)
                micro[variant] = metrics.micro_batches
                print(f"{variant}: {metrics.seconds:.1f} s", flush=True)
    medians = {variant: median(values) for variant, values in seconds.items()}
    result = {
        "machine": {"cpu": cpu_name(), "cores": torch.get_num_threads(), "torch": torch.__version__},
        "samples_from": str(args.dataset) if args.dataset else "synthetic shapes",
        "budget": args.budget,
        "samples": len(samples),
        "tokens": sum(lengths),
        "trained_tokens": sum(sum(s.trained[1:]) for s in samples),
        "padded_tokens": padded_tokens,
        "packed_rows": len(packing.plan_rows(lengths, args.budget)),
        "micro_batches": micro,
        "seconds_median": medians,
        "tokens_per_second": {variant: sum(lengths) / value for variant, value in medians.items()},
        "speedup_packed_over": {variant: medians[variant] / medians["packed"] for variant in VARIANTS[:2]},
        "seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
