"""One process of a DeepSpeed learner for tests/trainer/test_deepspeed.py, started like `torchrun` starts
one (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the environment):

    python -m tests.trainer.deepspeed_worker steps POLICY_DIR OUT_DIR ZERO_STAGE
    python -m tests.trainer.deepspeed_worker loop POLICY_DIR CHECKPOINTS_DIR ZERO_STAGE STEPS

`steps` runs two learner steps on `toys.mixed_samples()` and rank 0 saves the trainable weights to
OUT_DIR/weights.pt; `loop` runs the training loop on the toy rollouts to STEPS, resuming first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from agentrun.trainer import sft
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.loop import LoopSettings, TrainingLoop

from .toys import mixed_samples, toy_rollouts


def lora_policy(policy_dir: Path) -> PeftModel:
    torch.manual_seed(1)  # the same LoRA initialisation in every process
    return sft.add_lora(AutoModelForCausalLM.from_pretrained(policy_dir), rank=4)


def trained_weights(learner: Learner) -> dict[str, torch.Tensor]:
    with learner.engine.full_parameters():
        return {k: v.detach().clone() for k, v in learner.model.named_parameters() if v.requires_grad}


def run_steps(policy_dir: Path, settings: LearnerSettings) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """Two steps on the mixed samples: (trainable weights after them, each step's metrics)."""
    learner = Learner(lora_policy(policy_dir), settings, pad_id=0)
    metrics = [learner.step(mixed_samples()) for _ in range(2)]
    report = [{"loss": m.loss, "grad_norm": m.grad_norm, "trained_tokens": m.trained_tokens} for m in metrics]
    return trained_weights(learner), report


def learner_settings(engine: str, zero_stage: int) -> LearnerSettings:
    # 60 tokens: three micro-batches of the mixed samples, so with two ranks one runs a zero-weight filler
    return LearnerSettings(lr=5e-3, micro_batch_tokens=60, engine=engine, zero_stage=zero_stage)  # type: ignore[arg-type]


def main() -> None:
    mode, policy_dir, out, stage = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    if mode == "steps":
        weights, report = run_steps(policy_dir, learner_settings("deepspeed", stage))
        if torch.distributed.get_rank() == 0:
            torch.save(weights, out / "weights.pt")
            (out / "metrics.json").write_text(json.dumps(report))
    else:
        model = lora_policy(policy_dir)
        learner = Learner(model, learner_settings("deepspeed", stage), pad_id=0)
        loop = TrainingLoop(learner, "builtin:tiny", out, toy_rollouts(model), lambda name, path: None,
                            LoopSettings(steps=int(sys.argv[5]), checkpoint_every=2))
        loop.resume()
        loop.run()


if __name__ == "__main__":
    main()
