"""Toy policies and rollouts for the learner's tests (imported by the tests and by the DeepSpeed worker
processes, which cannot use pytest fixtures).

The toy task: one token after a fixed prompt, from the tiny model taught to answer GOOD or BAD about
evenly; reward 1 for GOOD. GRPO has something to choose between from the first step."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from agentrun.rollout.trajectory import RewardRecord, Timings, Trajectory, Turn
from agentrun.trainer.samples import Sample

PROMPT, GOOD, BAD = [11, 12, 13, 14], 100, 200

Rollouts = Callable[[int, str], list[list[Trajectory]]]


def bimodal_policy(tiny_dir: Path) -> PreTrainedModel:
    """A fresh copy of the toy policy; every call returns identical weights."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    ids = torch.tensor([[*PROMPT, GOOD], [*PROMPT, BAD]])
    for _ in range(25):
        logits = model(input_ids=ids).logits[:, -2]
        torch.nn.functional.cross_entropy(logits, ids[:, -1]).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model


def toy_trajectory(model_name: str, token: int, logprob: float, scenario: int) -> Trajectory:
    reward = float(token == GOOD)
    return Trajectory(
        scenario_id=scenario, question="toy", model=model_name, timings=Timings(wall_seconds=0.0),
        turns=[Turn(prompt_messages=1, content=None, finish_reason="stop", model=model_name, latency_seconds=0.0,
                    prompt_token_ids=PROMPT, token_ids=[token], logprobs=[logprob])],
        answer_correct=token == GOOD,
        reward=RewardRecord(total=reward, outcome="correct" if reward else "wrong", partial=0.0,
                            found_right_email=False, read_right_email=False, no_invalid_read=True,
                            sources_correct=False),
    )


def toy_rollouts(model: torch.nn.Module, *, served_as: str | None = None, failing: int = 0,
                 failure: str = "ServerError: 503") -> Rollouts:
    """Two groups of four one-token answers, sampled from `model` with a generator seeded by the step
    (so a replayed step samples the same tokens from the same weights)."""

    def rollouts(step: int, model_name: str) -> list[list[Trajectory]]:
        generator = torch.Generator().manual_seed(step)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([PROMPT])).logits[0, -1].float(), -1)
        groups = []
        for scenario in range(2):
            tokens = torch.multinomial(logp.exp(), 4, replacement=True, generator=generator)
            groups.append([toy_trajectory(served_as or model_name, int(t), float(logp[t]), scenario) for t in tokens])
        for trajectory in groups[0][:failing]:
            trajectory.exception, trajectory.reward = failure, None
        return groups

    return rollouts


def served_rollouts(policy: PreTrainedModel, checkpoints_dir: Path, base_name: str, *,
                    served_as: Callable[[int, str], str] | None = None) -> Rollouts:
    """`toy_rollouts` from a server of its own, as vLLM is: a copy of `policy` with a LoRA adapter that
    serves `base_name` as the untrained adapter and `step-N` as the adapter saved in checkpoints_dir/step-N,
    so sampling in a thread beside the learner reads no weights the learner is changing.
    `served_as(step, requested)` names the model the answers claim (default: the requested one)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from agentrun.checkpoint_files import ADAPTER_WEIGHTS
    from agentrun.trainer import sft

    server = sft.add_lora(copy.deepcopy(policy), rank=4)
    untrained = {k: v.clone() for k, v in server.state_dict().items() if "lora_" in k}
    sample = toy_rollouts(server)

    def rollouts(step: int, model_name: str) -> list[list[Trajectory]]:
        if model_name == base_name:
            server.load_state_dict(untrained, strict=False)
        else:
            set_peft_model_state_dict(server, load_file(checkpoints_dir / model_name / ADAPTER_WEIGHTS))
        return sample(step, served_as(step, model_name) if served_as else model_name)

    return rollouts


def mixed_samples() -> list[Sample]:
    """Seven samples of different lengths, several trained spans each, positive and negative advantages
    and server logprobs off the learner's: enough to make micro-batching and sharding matter."""
    generator = torch.Generator().manual_seed(7)
    samples = []
    for index, length in enumerate((9, 30, 14, 22, 6, 17, 11)):
        ids = torch.randint(5, 500, (length,), generator=generator).tolist()
        trained = [i % 3 != 0 and i > 2 for i in range(length)]
        server = (-torch.rand(length, generator=generator) * 4).tolist()
        samples.append(Sample(ids=ids, trained=trained, server_logprobs=server, advantage=(-1.0) ** index * (index + 1) / 4))
    return samples
