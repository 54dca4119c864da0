"""Supervised fine-tuning on demonstrations: the starting policy that GRPO then improves.

Reads top to bottom: encode conversations (assistant tokens trained, everything else masked), then a
plain AdamW loop over random batches, optionally preceded by the copy curriculum (for a model trained
from random initialisation), then an atomic save: the full model for the tiny model, a PEFT LoRA
adapter (`lora=True`) for large ones, whose `base_model_name_or_path` is the base as the server names it.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from agentrun import demonstrations, storage
from agentrun.mailbox.records import Scenario
from agentrun.models import loading
from agentrun.trainer import checkpoints, curriculum, masking, prefix
from agentrun.trainer.masking import Encoded

IGNORE = -100  # label of a token that is not trained (the value transformers' loss skips)


@dataclass(frozen=True)
class SFTSettings:
    """How long and how hard to train. The defaults suit a pretrained model (a LoRA adapter on Qwen3);
    TINY_BOOTSTRAP below is the randomly initialised tiny model's, measured in bench/."""

    steps: int = 200  # optimizer steps on demonstrations (assistant tokens trained)
    batch_size: int = 4  # demonstrations per step (~1-2k tokens each)
    lr: float = 1e-4  # peak learning rate (warmup, then cosine decay)
    curriculum_steps: int = 0  # copy-curriculum steps first (for a randomly initialised model)
    curriculum_batch_size: int = 32  # copy rows are short (~60-280 tokens): many per step
    curriculum_lr: float = 1.5e-3  # peak learning rate of the curriculum
    language_steps: int = 0  # steps with the loss on every token of the demonstrations, before SFT proper
    max_length: int = 4096  # longer demonstrations are skipped (the tiny model's context)
    seed: int = 0  # batch order, curriculum rows and torch's RNG
    precision: str = "auto"  # "bf16" autocast, "fp32", or "auto": bf16 where the CPU has it natively
    device: str = "cpu"  # torch device to train on ("cuda" where there is one)
    log_every: int = 25  # steps between loss lines (0: none)
    time_budget_seconds: float | None = None  # stop SFT proper after this long (equal-compute comparisons)
    progress: bool = True  # a tqdm bar per phase


# From random initialisation (bench/results/bootstrap_sweep_1.json, tiny_model.json): copying ids and
# answers out of the context appears only after ~800 curriculum steps; predicting every token of the
# demonstrations then teaches the JSON the turns are made of; full training tolerates a high rate.
TINY_BOOTSTRAP = SFTSettings(steps=500, lr=1.5e-3, curriculum_steps=800, language_steps=300)


class SFTError(Exception):
    """SFT cannot run: no demonstrations, none that fits, or a curriculum without a dataset."""


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own data, batch size and learning-rate schedule."""

    name: str
    steps: int  # optimizer steps
    batch_size: int  # conversations per step
    lr: float  # peak learning rate, reached after warmup, then cosine decay towards 0
    warmup_steps: int = 20  # linear warmup: Adam's moment estimates are noisy for the first steps
    time_budget_seconds: float | None = None  # stop early after this long (the schedule is then cut short)


@dataclass
class Report:
    """What each phase did, for the CLI to print and the bench to record."""

    phases: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> loss, seconds, tokens

    def record(self, name: str, first_loss: float, last_loss: float, seconds: float, tokens: int, padded: int) -> None:
        self.phases[name] = {
            "first_loss": first_loss,
            "last_loss": last_loss,
            "seconds": seconds,
            "tokens": tokens,
            "padded_tokens": padded,  # what the forward passes computed: the cost on a given machine
            "tokens_per_second": tokens / seconds if seconds else 0.0,
        }


def batch_tensors(examples: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `labels` (untrained and padding tokens IGNORE)."""
    width = max(len(e.ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)  # (B, T)
    for row, example in enumerate(examples):
        ids = torch.tensor(example.ids)
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.where(torch.tensor(example.trained), ids, IGNORE)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


GROUPED_BATCHES = 8  # batches drawn together and regrouped by length (as transformers' group_by_length)


def random_batches(examples: Sequence[Encoded], batch_size: int, rng: Random) -> Iterator[list[Encoded]]:
    """Endless batches drawn without replacement within an epoch (each epoch reshuffled)."""
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        chosen, order = order[:batch_size], order[batch_size:]
        yield [examples[i] for i in chosen]


def length_grouped(batches: Iterator[list[Encoded]], rng: Random) -> Iterator[list[Encoded]]:
    """The same rows regrouped so that each batch holds rows of similar length, in random batch order:
    right padding to the longest row then wastes little compute (copy rows vary 60-280 tokens,
    demonstrations 1-3k)."""
    while True:
        drawn = [next(batches) for _ in range(GROUPED_BATCHES)]
        size = len(drawn[0])
        rows = sorted((row for batch in drawn for row in batch), key=lambda row: len(row.ids))
        regrouped = [rows[start : start + size] for start in range(0, len(rows), size)]
        rng.shuffle(regrouped)
        yield from regrouped


def native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX). Without it bf16 is emulated:
    on a 2-core AVX512 Xeon without either, bf16 autocast trained at 0.2-0.5x the fp32 speed, where
    DESIGN §9's probe machine measured about 2x."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(precision: str, device: str = "cpu") -> contextlib.AbstractContextManager[object]:
    """bf16 autocast ("bf16", or "auto" on a GPU or a CPU with native bf16): matmuls in bf16, weights
    and optimizer state stay fp32."""
    device_type = torch.device(device).type
    native = device_type == "cuda" or native_bf16()
    if precision == "bf16" or (precision == "auto" and native):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_phase(
    model: PreTrainedModel, batches: Iterator[list[Encoded]], phase: Phase, pad_id: int, report: Report,
    settings: SFTSettings,
) -> None:
    """`phase.steps` AdamW steps on batches of `phase.batch_size`; records the loss and throughput."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    # betas (0.9, 0.95) and weight decay 0.1: the usual small-transformer settings (nanoGPT, Qwen).
    optimizer = torch.optim.AdamW(trainable, lr=phase.lr, betas=(0.9, 0.95), weight_decay=0.1)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(phase.warmup_steps, phase.steps // 10), phase.steps)
    model.train()
    losses: list[float] = []
    tokens = padded = 0
    started = time.perf_counter()
    log_every = settings.log_every
    bar = tqdm(range(phase.steps), desc=phase.name, disable=not settings.progress, unit="step")
    for step in bar:
        if phase.time_budget_seconds is not None and time.perf_counter() - started > phase.time_budget_seconds:
            break
        rows = next(batches)
        batch = {name: tensor.to(settings.device) for name, tensor in batch_tensors(rows, pad_id).items()}
        shared = prefix.shared_length([row.ids for row in rows], [row.trained for row in rows])
        with autocast(settings.precision, settings.device):
            # mean cross-entropy over the trained (assistant) tokens; the common system prompt computed once
            loss = prefix.forward(model, batch["input_ids"], batch["attention_mask"], shared, batch["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)  # one bad batch cannot wreck the weights
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel() - shared * (len(rows) - 1)  # what the forward passes computed
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            tqdm.write(f"{phase.name} step {step + 1}/{phase.steps}: loss {sum(recent) / len(recent):.4f}")
    model.eval()
    if losses:
        report.record(phase.name, losses[0], _tail_mean(losses), time.perf_counter() - started, tokens, padded)


def _tail_mean(losses: list[float]) -> float:
    """The mean of the last tenth of the losses: a single batch's loss is noisy."""
    tail = losses[-max(1, math.ceil(len(losses) / 10)) :]
    return sum(tail) / len(tail)


def run_sft(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, shown: Sequence[demonstrations.Demonstration],
    settings: SFTSettings, *, curriculum_pools: list[list[str]] | None = None,
) -> Report:
    """The copy curriculum and the every-token language phase (if asked for), then SFT on `shown`;
    trains `model` in place."""
    torch.manual_seed(settings.seed)
    rng = Random(settings.seed)
    model.to(settings.device)
    encoded = [masking.encode(tokenizer, d.messages, d.tools) for d in shown]
    fitting = [e for e in encoded if len(e.ids) <= settings.max_length and any(e.trained)]
    if not fitting:
        raise SFTError(f"none of the {len(encoded)} demonstrations fits in {settings.max_length} tokens")
    report = Report()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if settings.curriculum_steps:
        if not curriculum_pools:
            raise SFTError("the copy curriculum draws its strings from a dataset: pass the dataset directory")
        phase = Phase("curriculum", settings.curriculum_steps, settings.curriculum_batch_size, settings.curriculum_lr)
        contexts = [(d.messages[0], d.tools) for d in shown if d.messages and d.messages[0].get("role") == "system"]
        copy_rows = length_grouped(copy_batches(tokenizer, curriculum_pools, contexts, phase.batch_size, rng), rng)
        train_phase(model, copy_rows, phase, pad_id, report, settings)
    if settings.language_steps:
        # A randomly initialised model also has to learn to read: tool results, emails and questions are
        # ~90% of a demonstration's tokens, and predicting them teaches the JSON and the mail that the
        # assistant's turns are made of, with ten times the targets per step of assistant-only SFT.
        phase = Phase("language", settings.language_steps, settings.batch_size, settings.lr)
        language_rows = length_grouped(random_batches(every_token(fitting), phase.batch_size, rng), rng)
        train_phase(model, language_rows, phase, pad_id, report, settings)
    phase = Phase("sft", settings.steps, settings.batch_size, settings.lr,
                  time_budget_seconds=settings.time_budget_seconds)
    shown_rows = length_grouped(random_batches(fitting, phase.batch_size, rng), rng)
    train_phase(model, shown_rows, phase, pad_id, report, settings)
    report.phases["sft"]["demonstrations"] = len(fitting)
    return report


def every_token(examples: Sequence[Encoded]) -> list[Encoded]:
    """The same conversations with every token trained (the first is never predicted: no labels shift in)."""
    return [Encoded(e.ids, [index > 0 for index in range(len(e.ids))]) for e in examples]


def copy_batches(
    tokenizer: PreTrainedTokenizerBase, pools: list[list[str]], contexts: Sequence[tuple[dict[str, Any], list[Any]]],
    size: int, rng: Random,
) -> Iterator[list[Encoded]]:
    """Endless batches of fresh copy rows (never repeated: the skill, not the rows, is learned), each in
    the context (system message, tools) of a random demonstration, or bare if there are none."""
    while True:
        rows = []
        for _ in range(size):
            system, tools = rng.choice(contexts) if contexts else (None, None)
            rows.append(masking.encode(tokenizer, curriculum.copy_row(pools, rng, system), tools))
        yield rows


def add_lora(
    model: PreTrainedModel, rank: int = 16, alpha: int | None = None, dropout: float = 0.0,
    target_modules: list[str] | str = "all-linear",
) -> PreTrainedModel:
    """Wrap the model with a LoRA adapter (every linear layer of the blocks by default; alpha 2 x rank)."""
    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=target_modules,
                        task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        # peft 0.21 still reads `is_gradient_checkpointing`, which transformers 5 deprecates; harmless.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config)  # type: ignore[return-value]


def fine_tune(
    base: str, root: Path, shown: Sequence[demonstrations.Demonstration], settings: SFTSettings, out: Path, *,
    dataset_dir: Path | None = None, scenarios: Sequence[Scenario] | None = None, lora: bool = False,
) -> Report:
    """Load `base`, train it (the curriculum's strings come from `dataset_dir`, its answers from
    `scenarios`, by default every train scenario) and save it to `out`."""
    pools = (curriculum.string_pools(dataset_dir, scenarios) if settings.curriculum_steps and dataset_dir is not None
             else None)
    tokenizer = loading.load_tokenizer(base, root)
    model = loading.load_model(base, root)
    if lora:
        model = add_lora(model)
    report = run_sft(model, tokenizer, shown, settings, curriculum_pools=pools)
    save(model, tokenizer, out, base, lora)
    return report


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path, base: str, lora: bool) -> None:
    """Write the trained model atomically: a full HF model directory, or a PEFT adapter for `base`."""
    with storage.atomic_directory(out) as staging:
        if lora:
            checkpoints.write_adapter(model, staging, base)  # type: ignore[arg-type]
        else:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
