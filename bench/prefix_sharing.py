"""Shared-prefix forward passes: SFT and GRPO learner steps with the common prompt computed once, against
the same steps on full rows, alternating in one process (the machines here are noisy).

SFT: batches of 4 oracle demonstrations (the bootstrap's batch). Learner: one GRPO step (LoRA r8) on 32
samples made of demonstrations with random advantages (a step's 8 questions x 4). builtin:tiny, fp32.

    PYTHONPATH=core:trainer:evaluator python bench/prefix_sharing.py [--dataset DIR] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from random import Random
from statistics import median

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentrun import demonstrations
from agentrun.evaluator import benchmark
from agentrun.mailbox import build, schema
from agentrun.models import tiny
from agentrun.trainer import masking, prefix, sft
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.samples import Sample


def sft_step(model: torch.nn.Module, rows: list[masking.Encoded], share: bool) -> float:
    started = time.perf_counter()
    batch = sft.batch_tensors(rows, pad_id=0)
    shared = prefix.shared_length([r.ids for r in rows], [r.trained for r in rows]) if share else 0
    prefix.forward(model, batch["input_ids"], batch["attention_mask"], shared, batch["labels"]).loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a built dataset (default: a synthetic one, built here)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prefix_sharing.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentrun-prefix-") as scratch:
        dataset = args.dataset or Path(scratch) / "dataset"
        if not (dataset / schema.EMAILS_DB).is_file():
            build.build("synthetic", dataset, seed=0, emails=20_000)
        model_dir = tiny.build_tiny(Path(scratch) / "tiny")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        shown = demonstrations.oracle_for(dataset, benchmark.training_scenarios(dataset, 250)[:64], seed=0)
        rows = [masking.encode(tokenizer, d.messages, d.tools) for d in shown]
        rng = Random(0)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        batches = [rng.sample(rows, 4) for _ in range(4)]
        timings: dict[str, list[float]] = {"sft full": [], "sft shared": [], "learner full": [], "learner shared": []}
        for _ in range(args.repeats):
            for share in (False, True):
                timings[f"sft {'shared' if share else 'full'}"].append(sum(sft_step(model, b, share) for b in batches))
        samples = [Sample(r.ids, r.trained, [0.0] * len(r.ids), rng.gauss(0, 1)) for r in rng.sample(rows, 32)]
        learner = Learner(sft.add_lora(AutoModelForCausalLM.from_pretrained(model_dir), rank=8),
                          LearnerSettings(lr=1e-4, importance_correction=False), pad_id=0)
        for _ in range(args.repeats):
            for share in (False, True):
                learner.share_prefix = share
                timings[f"learner {'shared' if share else 'full'}"].append(learner.step(samples).seconds)
    result = {
        "machine": {"threads": torch.get_num_threads()},
        "mean_row_tokens": sum(len(r.ids) for r in rows) / len(rows),
        "shared_tokens": prefix.shared_length([r.ids for r in batches[0]], [r.trained for r in batches[0]]),
        "seconds_median": {name: median(values) for name, values in timings.items()},
        "speedup": {phase: median(timings[f"{phase} full"]) / median(timings[f"{phase} shared"])
                    for phase in ("sft", "learner")},
        "seconds": timings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
