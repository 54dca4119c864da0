"""One GRPO optimizer step on a batch of samples: micro-batches by token budget (packed rows, `packing`,
or padded rows), gradient accumulation, the loss of `grpo`, clipping, AdamW. The training engine
(`engines`: plain torch or DeepSpeed ZeRO) owns backward, the update and the processes; the loss is the
same for both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from agentrun.spec.models import LearnerSpec, TrainingSpec
from agentrun.trainer import grpo, packing, prefix, varlen
from agentrun.trainer.engines import DeepSpeedEngine, TorchEngine, TrainingEngine
from agentrun.trainer.flops import ModelFlops, peak_flops
from agentrun.trainer.logprobs import causal_lm, selected_logprobs
from agentrun.trainer.samples import Sample


@dataclass(frozen=True)
class LearnerSettings:
    lr: float = 2e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eps_low: float = 0.2
    eps_high: float = 0.28
    kl_coef: float = 0.0
    importance_correction: bool = True
    importance_clip: float = 2.0
    epochs: int = 1  # passes over a step's samples
    minibatches: int = 1  # optimizer steps per pass, each on every minibatches-th sample
    micro_batch_tokens: int = 16384  # tokens per forward pass: a packed row's, or padded rows x the longest
    packing: bool = False  # micro-batches are packed rows without padding (packing), not padded rows
    gradient_checkpointing: bool = False  # recompute each layer's activations in backward
    device: str = "cpu"
    engine: Literal["torch", "deepspeed"] = "torch"
    zero_stage: int = 2  # DeepSpeed only

    @classmethod
    def from_spec(cls, training: TrainingSpec, learner: LearnerSpec, device: str = "cpu",
                  engine: Literal["torch", "deepspeed"] = "torch") -> LearnerSettings:
        return cls(
            lr=training.learning_rate, weight_decay=training.weight_decay, max_grad_norm=training.max_grad_norm,
            eps_low=training.eps_low, eps_high=training.eps_high, kl_coef=training.kl_coef,
            epochs=training.epochs, minibatches=training.minibatches,
            importance_correction=training.importance_correction.enabled,
            importance_clip=training.importance_correction.clip, micro_batch_tokens=learner.micro_batch_tokens,
            packing=default_packing(device) if learner.packing is None else learner.packing,
            gradient_checkpointing=learner.gradient_checkpointing, device=device,
            engine=engine, zero_stage=learner.deepspeed.zero_stage,
        )


def default_packing(device: str) -> bool:
    """`learner.packing` when unset: packed rows on GPUs; on CPUs padded rows, whose shared prompt prefix
    (computed once) saves more than packing's per-sample attention does (docs/LEARNER.md)."""
    return device.startswith("cuda")


@dataclass(frozen=True)
class StepMetrics:
    loss: float
    grad_norm: float
    trained_tokens: int
    micro_batches: int
    kl: float  # mean per-token KL to the base model (0 when the penalty is off)
    importance_weight: float  # mean truncated importance weight (1 when the correction is off)
    seconds: float
    flops: float  # of the whole step, every rank (flops.ModelFlops)
    mfu: float  # flops / seconds / the peak of every rank's GPU; 0 where the peak is unknown (CPUs)

    @property
    def tokens_per_second(self) -> float:
        return self.trained_tokens / self.seconds if self.seconds else 0.0


def combined(parts: Sequence[StepMetrics]) -> StepMetrics:
    """The metrics of a step made of several optimizer steps: sums of work, means of the rest."""
    tokens = sum(p.trained_tokens for p in parts)
    seconds = sum(p.seconds for p in parts)
    flops = sum(p.flops for p in parts)

    def mean(name: str) -> float:  # weighted by trained tokens, as each part's own value is
        return sum(getattr(p, name) * p.trained_tokens for p in parts) / max(tokens, 1)

    return StepMetrics(loss=mean("loss"), grad_norm=max(p.grad_norm for p in parts), trained_tokens=tokens,
                       micro_batches=sum(p.micro_batches for p in parts), kl=mean("kl"),
                       importance_weight=mean("importance_weight"), seconds=seconds, flops=flops,
                       mfu=sum(p.mfu * p.seconds for p in parts) / seconds if seconds else 0.0)


def micro_batches(samples: Sequence[Sample], token_budget: int) -> Iterator[list[Sample]]:
    """Samples grouped, longest first, so that rows x longest row stays within the budget (a sample
    longer than the budget is a micro-batch of its own)."""
    batch: list[Sample] = []
    for sample in sorted(samples, key=lambda s: len(s.ids), reverse=True):
        if batch and (len(batch) + 1) * len(batch[0].ids) > token_budget:
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


def _tensors(batch: Sequence[Sample], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(s.ids) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
    trained = torch.zeros((len(batch), width), dtype=torch.bool)  # (B, T)
    server = torch.zeros((len(batch), width))  # (B, T)
    advantage = torch.zeros((len(batch), width))  # (B, T)
    for row, s in enumerate(batch):
        n = len(s.ids)
        ids[row, :n] = torch.tensor(s.ids)
        mask[row, :n] = 1
        trained[row, :n] = torch.tensor(s.trained)
        server[row, :n] = torch.tensor(s.server_logprobs)
        advantage[row, :n] = s.advantage
    old = torch.zeros((len(batch), width))  # (B, T)
    for row, s in enumerate(batch):
        if s.old_logprobs is not None:
            old[row, : len(s.ids)] = torch.tensor(s.old_logprobs)
    trained[:, 0] = False  # the first token is never predicted
    tensors = {"input_ids": ids, "attention_mask": mask, "trained": trained, "server": server, "advantage": advantage,
               "old": old}
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def shard(batches: Sequence[list[Sample]], rank: int, world_size: int) -> list[tuple[list[Sample], float]]:
    """This rank's micro-batches, each with a loss weight. Every rank gets the same number of backward
    passes (ZeRO reduces gradients inside them): a rank short of work repeats a batch with weight 0."""
    mine = [(batch, 1.0) for batch in batches[rank::world_size]]
    rounds = -(-len(batches) // world_size)
    return mine + [(batches[0], 0.0)] * (rounds - len(mine))


def make_engine(model: torch.nn.Module, settings: LearnerSettings) -> TrainingEngine:
    if settings.engine == "deepspeed":
        return DeepSpeedEngine(model, settings.lr, settings.weight_decay, settings.max_grad_norm, settings.zero_stage)
    return TorchEngine(model, settings.lr, settings.weight_decay, settings.max_grad_norm)


class Learner:
    def __init__(self, model: torch.nn.Module, settings: LearnerSettings, pad_id: int) -> None:
        self.model = model.to(settings.device)
        if settings.gradient_checkpointing:
            # Non-reentrant: gradients reach the LoRA weights although the embeddings' outputs need none.
            # (transformers renamed the method in 5.x; older 5.x releases have only the first name.)
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.settings = settings
        self.pad_id = pad_id
        # The prompt prefix a micro-batch shares is computed once (agentrun.trainer.prefix), except where
        # its cache cannot be kept: checkpointed layers drop it, and ZeRO-3 would gather the weights twice.
        # Nor in a packed row: its samples would each have to attend to a prefix outside their own span,
        # which varlen attention (disjoint causal spans, cu_seq_lens) cannot express, and a row mixes
        # questions, so little more than the tool schemas is common to it.
        self.share_prefix = settings.engine == "torch" and not settings.gradient_checkpointing and not settings.packing
        self.engine = make_engine(self.model, settings)
        self.flops = ModelFlops.of(self.model)
        self.peak_flops = peak_flops(settings.device)

    def update(self, samples: Sequence[Sample]) -> StepMetrics:
        """A GRPO step's updates: `epochs` passes over `samples`, each `minibatches` optimizer steps (PPO's
        scheme). With more than one update, the learner's log-probabilities before the first are kept as
        the sampling policy's, so the clipped ratio bounds how far the later updates move from it."""
        s = self.settings
        if s.epochs == s.minibatches == 1:
            return self.step(samples)
        old = [dataclasses.replace(sample, old_logprobs=logprobs)
               for sample, logprobs in zip(samples, self.policy_logprobs(samples), strict=True)]
        parts = [old[i :: s.minibatches] for i in range(s.minibatches)]
        return combined([self.step(part) for _ in range(s.epochs) for part in parts if part])

    def policy_logprobs(self, samples: Sequence[Sample]) -> list[list[float]]:
        """The current policy's log-probability of each sample's ids (0.0 where not trained), no gradient."""
        found: dict[int, list[float]] = {}
        with torch.no_grad(), self._attention():
            for batch in self._micro_batches(samples):
                t = self._tensors(batch)
                logp = self._logprobs(t, self._shared(batch))  # (N,)
                full = torch.zeros(t["trained"].shape, dtype=logp.dtype, device=logp.device)  # (B, T)
                full[t["trained"]] = logp
                if self.settings.packing:
                    per_sample = packing.split_row(full, t["cu_seq_lens"])
                else:
                    per_sample = [full[row, : len(sample.ids)].tolist() for row, sample in enumerate(batch)]
                found.update((id(sample), values) for sample, values in zip(batch, per_sample, strict=True))
        return [found[id(sample)] for sample in samples]

    def _micro_batches(self, samples: Sequence[Sample]) -> list[list[Sample]]:
        budget = self.settings.micro_batch_tokens
        if self.settings.packing:
            return [[samples[i] for i in row] for row in packing.plan_rows([len(s.ids) for s in samples], budget)]
        return list(micro_batches(samples, budget))

    def _tensors(self, batch: Sequence[Sample]) -> dict[str, torch.Tensor]:
        if self.settings.packing:
            return packing.row_tensors(batch, self.settings.device)
        return _tensors(batch, self.pad_id, self.settings.device)

    def _attention(self) -> contextlib.AbstractContextManager[None]:
        """Where the model computes micro-batches: forward passes and the backward passes that may recompute
        them (a packed row's attention is switched to its samples' spans, `varlen`)."""
        return varlen.packed_attention(causal_lm(self.model)) if self.settings.packing else contextlib.nullcontext()

    def _logprobs(self, t: dict[str, torch.Tensor], shared: int, recompute: bool = True) -> torch.Tensor:
        """`selected_logprobs` at the trained positions of a micro-batch's tensors (`_tensors`): (N,)."""
        if self.settings.packing:
            return selected_logprobs(self.model, t["input_ids"], None, t["trained"], recompute=recompute,
                                     position_ids=t["position_ids"], cu_seq_lens=t["cu_seq_lens"])
        return selected_logprobs(self.model, t["input_ids"], t["attention_mask"], t["trained"], recompute=recompute,
                                 shared=shared)

    def _shared(self, batch: Sequence[Sample]) -> int:
        """Tokens at the start of every row of `batch` computed once (0: none)."""
        if not self.share_prefix:
            return 0
        return prefix.shared_length([s.ids for s in batch], [[False, *s.trained[1:]] for s in batch])

    def step(self, samples: Sequence[Sample]) -> StepMetrics:
        """One optimizer step on `samples` (the same list on every rank); the loss is the token-level mean
        over all of them, whichever rank trains which micro-batch."""
        started = time.perf_counter()
        engine = self.engine
        total = sum(sum(sample.trained[1:]) for sample in samples)
        self.model.train()
        batches = self._micro_batches(samples)
        with self._attention():
            sums = self._accumulate(shard(batches, engine.rank, engine.world_size), total)
        grad_norm = engine.step()
        self.model.eval()
        loss_sum, kl_sum, weight_sum, count = engine.sum_across_ranks(sums)
        seconds = time.perf_counter() - started
        flops = self.flops.step([len(sample.ids) for sample in samples], total)
        mfu = flops / seconds / (self.peak_flops * engine.world_size) if self.peak_flops else 0.0
        return StepMetrics(
            loss=loss_sum, grad_norm=grad_norm, trained_tokens=int(count), micro_batches=len(batches),
            kl=kl_sum / max(count, 1), importance_weight=weight_sum / max(count, 1), seconds=seconds,
            flops=flops, mfu=mfu,
        )

    def _accumulate(self, mine: Sequence[tuple[list[Sample], float]], total: int) -> list[float]:
        """Forward and backward passes over this rank's weighted micro-batches, each loss a share of the
        token-level mean over `total` trained tokens; returns the sums of loss, KL, importance weight and
        trained tokens (real work only)."""
        s, engine = self.settings, self.engine
        recompute = not (s.engine == "deepspeed" and s.zero_stage == 3)  # see selected_logprobs
        loss_sum = kl_sum = weight_sum = 0.0
        count = 0
        for index, (batch, weight) in enumerate(mine):
            t = self._tensors(batch)
            shared = self._shared(batch)
            logp = self._logprobs(t, shared, recompute)  # (N,)
            # The policy that sampled: the learner before this step's first update (the same weights as
            # now on that update, so the ratio is 1 and only the later updates of a step are clipped).
            old_logp = t["old"][t["trained"]] if batch[0].old_logprobs is not None else logp.detach()
            advantages = t["advantage"][t["trained"]]
            token_loss = grpo.clipped_token_loss(logp, old_logp, advantages, s.eps_low, s.eps_high)
            importance = torch.ones_like(logp)
            if s.importance_correction:
                importance = grpo.importance_weights(old_logp, t["server"][t["trained"]], s.importance_clip)
                token_loss = token_loss * importance
            kl = torch.zeros_like(logp)
            if s.kl_coef:
                with torch.no_grad(), self.model.disable_adapter():  # the base model is the reference
                    ref_logp = self._logprobs(t, shared)
                kl = grpo.kl_penalty(logp, ref_logp)
                token_loss = token_loss + s.kl_coef * kl
            loss = grpo.token_mean(token_loss, torch.ones_like(token_loss), total_trained=total)
            # Ranks average their gradients; scaling by the world size makes that a sum over ranks.
            engine.backward(loss * weight * engine.world_size, last=index == len(mine) - 1)
            if weight:
                loss_sum += float(loss.detach())
                kl_sum += float(kl.detach().sum())
                weight_sum += float(importance.sum())
                count += logp.numel()
        return [loss_sum, kl_sum, weight_sum, count]
