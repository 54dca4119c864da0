"""Training engines: who owns backward, the optimizer step, the optimizer's state on disk, and the
processes of a data-parallel learner. The loss (`grpo`, `learner`) is the same for every engine.

- `TorchEngine`: AdamW over the trainable (LoRA) parameters; one process, CPU or one GPU.
- `DeepSpeedEngine`: DeepSpeed ZeRO stage 1-3 over the processes that `torchrun`-style environment
  variables describe (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); NCCL on GPUs, gloo on
  CPUs. Each rank trains its share of a step's micro-batches; DeepSpeed averages the gradients.

Every method is called by every rank in the same order (several are collectives).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file

from agentrun.checkpoint_files import ADAPTER_WEIGHTS

OPTIMIZER_FILE = "optimizer.pt"
DEEPSPEED_DIR = "deepspeed"  # DeepSpeed's own checkpoint (module + one optimizer partition per rank)
DEEPSPEED_TAG = "state"


class TrainingEngine(Protocol):
    rank: int
    world_size: int

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """Accumulate gradients of `loss`; `last` marks the step's final micro-batch on this rank."""

    def step(self) -> float:
        """Clip, update and clear the gradients; returns the global gradient norm before clipping."""

    def save_state(self, directory: Path) -> None:
        """Write what this engine needs to resume exactly (the optimizer; DeepSpeed adds its master weights)."""

    def load_state(self, directory: Path) -> None:
        """Restore the trainable weights and the optimizer from a checkpoint `save_state` wrote into."""

    def full_parameters(self) -> contextlib.AbstractContextManager[None]:
        """Inside it every rank sees the whole trainable parameters (ZeRO-3 partitions them)."""

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank (picklable objects)."""

    def sum_across_ranks(self, values: Sequence[float]) -> list[float]: ...

    def barrier(self) -> None: ...


class TorchEngine:
    """Plain torch: AdamW over the trainable (LoRA) parameters, one process, CPU or one GPU."""

    rank = 0
    world_size = 1

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float, max_grad_norm: float) -> None:
        self.model = model
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=lr, weight_decay=weight_decay)
        self.max_grad_norm = max_grad_norm

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        loss.backward()

    def step(self) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def save_state(self, directory: Path) -> None:
        torch.save(self.optimizer.state_dict(), directory / OPTIMIZER_FILE)

    def load_state(self, directory: Path) -> None:
        set_peft_model_state_dict(self.model, load_file(directory / ADAPTER_WEIGHTS))
        self.optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, weights_only=True))

    def full_parameters(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def broadcast(self, value: Any) -> Any:
        return value

    def sum_across_ranks(self, values: Sequence[float]) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        pass


def deepspeed_config(zero_stage: int, max_grad_norm: float, bf16: bool) -> dict[str, Any]:
    """The DeepSpeed config: one optimizer step per `step()` however many micro-batches each rank ran
    (the learner marks the last one), gradients averaged over ranks, clipping by DeepSpeed."""
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,  # torch's AdamW over the LoRA parameters
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


class DeepSpeedEngine:
    """DeepSpeed ZeRO over `torchrun`-style processes (a single process when the variables are unset)."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float, max_grad_norm: float,
                 zero_stage: int = 2) -> None:
        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before deepspeed is imported
        for name, default in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                              ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
            os.environ.setdefault(name, default)
        import deepspeed

        self._deepspeed = deepspeed
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
        bf16 = any(p.dtype == torch.bfloat16 for p in parameters)
        self.ds, *_ = deepspeed.initialize(model=model, optimizer=optimizer, model_parameters=parameters,
                                           config=deepspeed_config(zero_stage, max_grad_norm, bf16))
        self.parameters = parameters
        self.zero_stage = zero_stage
        self.rank = torch.distributed.get_rank()
        self.world_size = torch.distributed.get_world_size()

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        self.ds.set_gradient_accumulation_boundary(last)
        self.ds.backward(loss)
        # DeepSpeed counts micro-steps in its engine's forward(), which the learner bypasses (it calls the
        # model's body and head itself); uncounted, ZeRO-3 overwrites accumulated gradients.
        count_micro_step = getattr(self.ds.optimizer, "clear_backward_seen_flag", None)  # ZeRO 1-3 only
        if count_micro_step is not None:
            count_micro_step()

    def step(self) -> float:
        self.ds.step()
        norm = self.ds.get_global_grad_norm()
        return float(norm) if norm is not None else 0.0

    def save_state(self, directory: Path) -> None:
        self.ds.save_checkpoint(str(directory / DEEPSPEED_DIR), tag=DEEPSPEED_TAG, save_latest=False,
                                exclude_frozen_parameters=True)

    def load_state(self, directory: Path) -> None:
        """DeepSpeed's files restore the trainable weights (its master copies included) and the optimizer
        partitions together; they need the world size they were written with."""
        found = sorted((directory / DEEPSPEED_DIR / DEEPSPEED_TAG).glob("*optim_states.pt"))
        if len(found) != self.world_size:
            raise RuntimeError(f"{directory} was written by {len(found)} learner processes and this learner has "
                               f"{self.world_size}: resume with the same learner.nodes and GPUs per node")
        path, _ = self.ds.load_checkpoint(str(directory / DEEPSPEED_DIR), tag=DEEPSPEED_TAG,
                                          load_module_strict=False, load_optimizer_states=True,
                                          load_lr_scheduler_states=False)
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load its state from {directory / DEEPSPEED_DIR}")

    @contextlib.contextmanager
    def full_parameters(self) -> Iterator[None]:
        if self.zero_stage == 3:
            with self._deepspeed.zero.GatheredParameters(self.parameters, modifier_rank=None):
                yield
        else:
            yield

    def broadcast(self, value: Any) -> Any:
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def sum_across_ranks(self, values: Sequence[float]) -> list[float]:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        torch.distributed.barrier()
