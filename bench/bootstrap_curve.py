"""One tiny-model bootstrap, evaluated at several points of its SFT phase: test accuracy against compute.

The curriculum and the language phase run as in `sft.run_sft`; SFT then runs one cosine schedule over
max(--evals) steps and, when it reaches each step in --evals, saves the model and evaluates it greedily
in process (bench/tiny_model.py's evaluation: the real environment and judge). Points before the last
are taken mid-schedule (at a higher learning rate), so they understate what a schedule of that length
reaches. `--copy-every N` puts a copy-curriculum batch in place of every Nth SFT batch.

    PYTHONPATH=core:trainer:evaluator python bench/bootstrap_curve.py --dataset DIR --base TINY_DIR \
        [--curriculum 500] [--language 150] [--evals 200 400 600] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from random import Random

import torch
from tiny_model import evaluate  # bench/ is the script's directory, so on sys.path
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentrun import demonstrations
from agentrun.evaluator import benchmark
from agentrun.trainer import curriculum, masking, sft

HELD_OUT = 250  # the quickstart's evaluation.limit: validation questions the bootstrap never sees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a built dataset")
    parser.add_argument("--base", type=Path, required=True, help="an untrained tiny model (agentrun model init-tiny)")
    parser.add_argument("--curriculum", type=int, default=500, help="copy-curriculum steps")
    parser.add_argument("--curriculum-batch", type=int, default=32)
    parser.add_argument("--curriculum-lr", type=float, default=1.5e-3)
    parser.add_argument("--language", type=int, default=0, help="every-token steps on the demonstrations")
    parser.add_argument("--batch", type=int, default=4, help="demonstrations per SFT / language step")
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--evals", type=int, nargs="+", default=[200, 400, 600], help="SFT steps to evaluate at")
    parser.add_argument("--copy-every", type=int, default=0, help="a copy batch instead of every Nth SFT batch")
    parser.add_argument("--questions", type=int, default=60, help="test questions per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bootstrap_curve.json")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = Random(args.seed)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(args.base), AutoTokenizer.from_pretrained(args.base)
    learned = benchmark.training_scenarios(args.dataset, HELD_OUT)
    shown = demonstrations.oracle_for(args.dataset, learned, seed=args.seed)
    encoded = [masking.encode(tokenizer, d.messages, d.tools) for d in shown]
    contexts = [(d.messages[0], d.tools) for d in shown]
    pools = curriculum.string_pools(args.dataset, learned)
    settings = sft.SFTSettings(progress=False, log_every=50)
    report, pad = sft.Report(), tokenizer.pad_token_id
    result: dict[str, object] = {"settings": {k: str(v) for k, v in vars(args).items()}, "points": []}

    def copy_rows(size: int) -> Iterator[list[masking.Encoded]]:
        return sft.length_grouped(sft.copy_batches(tokenizer, pools, contexts, size, rng), rng)

    started = time.perf_counter()
    if args.curriculum:
        phase = sft.Phase("curriculum", args.curriculum, args.curriculum_batch, args.curriculum_lr)
        sft.train_phase(model, copy_rows(args.curriculum_batch), phase, pad, report, settings)
    if args.language:
        phase = sft.Phase("language", args.language, args.batch, args.lr)
        every = sft.length_grouped(sft.random_batches(sft.every_token(encoded), args.batch, rng), rng)
        sft.train_phase(model, every, phase, pad, report, settings)
    trained_seconds = time.perf_counter() - started
    result["pre_sft_seconds"] = trained_seconds
    demos, copies = sft.length_grouped(sft.random_batches(encoded, args.batch, rng), rng), copy_rows(16)

    def evaluating() -> Iterator[list[masking.Encoded]]:
        nonlocal trained_seconds
        resumed = time.perf_counter()
        for step in range(max(args.evals) + 1):
            if step in args.evals:
                trained_seconds += time.perf_counter() - resumed
                saved = args.out.with_suffix(f".step{step}")
                sft.save(model, tokenizer, saved, "builtin:tiny", lora=False)
                point = evaluate(saved, args.dataset, args.questions)
                result["points"].append({"sft_steps": step, "train_seconds": trained_seconds, **point})  # type: ignore[attr-defined]
                args.out.write_text(json.dumps(result, indent=1))
                print(step, point["answer_accuracy"], point["outcomes"], flush=True)
                model.train()
                resumed = time.perf_counter()
            yield next(copies) if args.copy_every and (step + 1) % args.copy_every == 0 else next(demos)

    phase = sft.Phase("sft", max(args.evals) + 1, args.batch, args.lr)  # the last step only triggers the last point
    sft.train_phase(model, evaluating(), phase, pad, report, settings)
    result["phases"] = report.phases
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
