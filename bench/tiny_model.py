"""Tiny-model bench: build the offline model, bootstrap it (curriculum, language phase, SFT), evaluate it.

Measures on this machine (2 CPU cores in development): the time to build the tiny model, the time of
the curriculum and of SFT, then test-split answer accuracy and the rate of well-formed tool calls of the
SFT model, run in process: `model.generate` over the chat template, tool calls parsed from the hermes
blocks, executed by the real `EmailEnvironment`, answers judged by the deterministic judge and scored by
the reward. (`agentrun eval` against `agentrun serve` measures the same through HTTP.)

    PYTHONPATH=core:trainer:evaluator python bench/tiny_model.py [--steps 500] [--questions 100] [--out FILE]

Writes bench/results/tiny_model.json by default and prints it.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from agentrun import demonstrations
from agentrun.environment import reward
from agentrun.environment.email_env import EmailEnvironment
from agentrun.environment.episode import ToolCall
from agentrun.environment.judge import DeterministicJudge
from agentrun.evaluator import benchmark
from agentrun.mailbox import build, queries, schema
from agentrun.models import tiny
from agentrun.trainer import curriculum, sft

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
MAX_NEW_TOKENS = 256  # a tool call or final answer is ~30-100 tokens; more is a model that rambles
GENERATE_BATCH = 8  # conversations per generate call: prefill of ~2k-token prompts stays in memory


def parse_calls(text: str, turn: int) -> list[ToolCall]:
    """Hermes tool calls: `{"name", "arguments"}` JSON inside <tool_call> blocks; malformed ones are dropped."""
    calls = []
    for index, block in enumerate(TOOL_CALL.findall(text)):
        try:
            call = json.loads(block)
        except ValueError:
            continue
        if isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call:
            calls.append(ToolCall(f"call_{turn}_{index}", call["name"], json.dumps(call["arguments"])))
    return calls


def generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[str]:
    """Greedy replies to prompts (left-padded batch), cut at the end of the turn."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def evaluate(model_dir: Path, dataset_dir: Path, questions: int, device: str = "cpu") -> dict[str, Any]:
    """One greedy episode per test question; accuracy, well-formed tool-call rate, reward, outcomes."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    mailbox = queries.Mailbox(dataset_dir / schema.EMAILS_DB)
    scenarios = benchmark.select_scenarios(dataset_dir, "test", questions)
    envs = [EmailEnvironment(mailbox, s) for s in scenarios]
    conversations = [env.initial_messages() for env in envs]
    turns = well_formed = 0
    started = time.perf_counter()
    while active := [i for i, env in enumerate(envs) if not env.episode.done]:
        for start in range(0, len(active), GENERATE_BATCH if device == "cpu" else len(active)):
            chunk = active[start : start + (GENERATE_BATCH if device == "cpu" else len(active))]
            prompts = [
                tokenizer.apply_chat_template(conversations[i], tools=envs[i].tools, tokenize=False,
                                              add_generation_prompt=True)
                for i in chunk
            ]
            for i, text in zip(chunk, generate(model, tokenizer, prompts), strict=True):
                calls = parse_calls(text, envs[i].episode.turns)
                turns, well_formed = turns + 1, well_formed + bool(calls)
                conversations[i].append({
                    "role": "assistant", "content": TOOL_CALL.sub("", text).strip() or None,
                    "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                   for c in calls],
                })
                conversations[i] += envs[i].respond(text if not calls else None, calls)
    outcomes: Counter[str] = Counter()
    rewards, correct = [], 0
    for env in envs:
        episode = env.episode
        verdict = None
        if episode.error is None and episode.answer is not None and not reward.is_dont_know(episode.answer):
            verdict = DeterministicJudge.matches(episode.scenario.answer, episode.answer)
        scored = reward.score(episode, verdict)
        outcomes[scored.outcome.value] += 1
        rewards.append(scored.total)
        correct += bool(verdict)
    mailbox.close()
    return {
        "questions": len(envs),
        "answer_accuracy": correct / len(envs),
        "well_formed_tool_call_rate": well_formed / turns,
        "assistant_turns": turns,
        "mean_reward": sum(rewards) / len(rewards),
        "outcomes": dict(outcomes),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=20_000, help="synthetic mailbox size")
    parser.add_argument("--steps", type=int, default=sft.TINY_BOOTSTRAP.steps)
    parser.add_argument("--curriculum-steps", type=int, default=sft.TINY_BOOTSTRAP.curriculum_steps)
    parser.add_argument("--batch-size", type=int, default=sft.SFTSettings.batch_size)
    parser.add_argument("--lr", type=float, default=sft.TINY_BOOTSTRAP.lr)
    parser.add_argument("--language-steps", type=int, default=sft.TINY_BOOTSTRAP.language_steps,
                        help="every-token loss steps before SFT")
    parser.add_argument("--curriculum-batch-size", type=int, default=sft.SFTSettings.curriculum_batch_size)
    parser.add_argument("--curriculum-lr", type=float, default=sft.SFTSettings.curriculum_lr)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--hidden", type=int, default=tiny.TINY.hidden, help="model width (heads of 64, FFN 3x)")
    parser.add_argument("--layers", type=int, default=tiny.TINY.layers)
    parser.add_argument("--kv-heads", type=int, help="key/value heads (default: the tiny model's)")
    parser.add_argument("--vocab", type=int, default=tiny.TINY.vocab)
    parser.add_argument("--digits", type=int, default=tiny.TINY.digits, help="most digits per token")
    parser.add_argument("--device", default="cpu", help="torch device for training and evaluation")
    parser.add_argument("--questions", type=int, default=100, help="test questions to evaluate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tiny_model.json")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "agentrun-tiny-bench",
                        help="where the dataset and models are written (kept, to inspect or re-evaluate)")
    parser.add_argument("--dataset", type=Path, help="an existing dataset to use instead of building one")
    args = parser.parse_args()
    settings = sft.SFTSettings(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, curriculum_steps=args.curriculum_steps,
        curriculum_batch_size=args.curriculum_batch_size, curriculum_lr=args.curriculum_lr,
        language_steps=args.language_steps, seed=args.seed,
        precision=args.precision, device=args.device, progress=False,
    )
    dataset_dir, base_dir, sft_dir = args.dataset or args.work / "dataset", args.work / "base", args.work / "sft"
    if not (dataset_dir / schema.EMAILS_DB).is_file():  # runs sharing a --work share the dataset
        build.build("synthetic", dataset_dir, seed=args.seed, emails=args.emails)
    started = time.perf_counter()
    shape = tiny.Shape(hidden=args.hidden, layers=args.layers, heads=args.hidden // 64,
                       kv_heads=args.kv_heads or tiny.TINY.kv_heads, ffn=3 * args.hidden, vocab=args.vocab,
                       digits=args.digits)
    tiny.build_tiny(base_dir, args.seed, shape)
    build_seconds = time.perf_counter() - started

    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    shown = demonstrations.oracle(dataset_dir, "train", seed=args.seed)
    report = sft.run_sft(model, tokenizer, shown, settings, curriculum_pools=curriculum.string_pools(dataset_dir))
    sft.save(model, tokenizer, sft_dir, "builtin:tiny", lora=False)
    bootstrap_seconds = time.perf_counter() - started

    result = {
        "machine": {"cpus": torch.get_num_threads(), "native_bf16": sft.native_bf16(),
                    "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "build_seconds": build_seconds,
        "bootstrap_seconds": bootstrap_seconds,
        "phases": report.phases,
    }
    # Written before the evaluation too, so a failed or interrupted evaluation keeps the training numbers.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    result["evaluation"] = evaluate(sft_dir, dataset_dir, args.questions, args.device)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
