"""The training loop: exact resume, checkpoints vanilla PEFT loads, and the failures it must not hide."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, PreTrainedModel  # noqa: E402

from agentrun.rollout.client import ServedByError  # noqa: E402
from agentrun import checkpoint_files  # noqa: E402
from agentrun.trainer import sft  # noqa: E402
from agentrun.trainer.learner import Learner, LearnerSettings  # noqa: E402
from agentrun.trainer.loop import LoopSettings, ServerUnreachable, StepFailed, TrainingLoop  # noqa: E402

from .toys import toy_rollouts  # noqa: E402

BASE = "builtin:tiny"


def make_loop(policy: PreTrainedModel, checkpoints_dir: Path, steps: int, **rollout_options: object) -> TrainingLoop:
    model = sft.add_lora(policy, rank=4)
    learner = Learner(model, LearnerSettings(lr=5e-3), pad_id=0)
    published: list[str] = []
    return TrainingLoop(learner, BASE, checkpoints_dir, toy_rollouts(model, **rollout_options),  # type: ignore[arg-type]
                        lambda name, _: published.append(name), LoopSettings(steps=steps, checkpoint_every=2))


def adapter_weights(loop: TrainingLoop) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in loop.learner.model.named_parameters() if v.requires_grad}


def test_n_steps_equal_half_then_resume_then_half(bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path) -> None:
    straight = make_loop(bimodal_policy(), tmp_path / "straight", steps=4)
    records = straight.run()
    assert [r.step for r in records] == [1, 2, 3, 4]
    assert [r.model for r in records] == [BASE, "step-000001", "step-000002", "step-000003"]

    first_half = make_loop(bimodal_policy(), tmp_path / "resumed", steps=2)
    first_half.run()
    resumed = make_loop(bimodal_policy(), tmp_path / "resumed", steps=4)
    assert resumed.resume() == 2 and resumed.model_name == "step-000002"
    resumed.run()

    expected, got = adapter_weights(straight), adapter_weights(resumed)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert any(v.abs().sum() > 0 for k, v in got.items() if "lora_B" in k)  # it did train


def test_checkpoints_load_with_plain_peft_and_old_ones_are_pruned(
    bimodal_policy: Callable[[], PreTrainedModel], tiny_dir: Path, tmp_path: Path
) -> None:
    loop = make_loop(bimodal_policy(), tmp_path, steps=5)
    loop.run()
    # keep_last=2 and checkpoint_every=2: steps 2, 4 (multiples) and 4, 5 (newest) remain
    assert [step for step, _ in checkpoint_files.intact(tmp_path)] == [2, 4, 5]
    with warnings.catch_warnings():  # peft 0.21 reads an attribute transformers 5 deprecates
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), tmp_path / "step-000005")
    assert loaded.peft_config["default"].base_model_name_or_path == BASE
    trained = adapter_weights(loop)
    for name, value in loaded.named_parameters():
        if "lora_" in name:
            assert torch.equal(value, trained[name])


def test_a_half_written_checkpoint_is_never_resumed_from(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    make_loop(bimodal_policy(), tmp_path, steps=2).run()
    broken = tmp_path / "step-000003"
    broken.mkdir()
    (broken / checkpoint_files.ADAPTER_CONFIG).write_text('{"peft_type": "LORA"}')  # no weights, no trainer state
    (tmp_path / ".step-000004.tmp-1").mkdir()  # a staging directory left by a crash
    assert checkpoint_files.latest(tmp_path) == tmp_path / "step-000002"
    assert make_loop(bimodal_policy(), tmp_path, steps=4).resume() == 2


@pytest.mark.parametrize("damage", ["empty trainer state", "truncated adapter", "config not an object"])
def test_resume_falls_back_to_the_newest_intact_checkpoint(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path, damage: str
) -> None:
    make_loop(bimodal_policy(), tmp_path, steps=3).run()  # keeps steps 2 and 3
    newest = tmp_path / "step-000003"
    if damage == "empty trainer state":
        (newest / checkpoint_files.TRAINER_STATE).write_bytes(b"")
    elif damage == "truncated adapter":
        weights = newest / checkpoint_files.ADAPTER_WEIGHTS
        weights.write_bytes(weights.read_bytes()[:-100])
    else:
        (newest / checkpoint_files.ADAPTER_CONFIG).write_text("[]")
    resumed = make_loop(bimodal_policy(), tmp_path, steps=4)
    assert resumed.resume() == 2 and resumed.model_name == "step-000002"
    resumed.run()  # step 3 is trained again and its damaged directory replaced
    assert checkpoint_files.problem(newest) is None


def test_rollouts_from_another_model_fail_the_step(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    loop = make_loop(bimodal_policy(), tmp_path, steps=1, served_as="Qwen/Qwen3-4B")
    with pytest.raises(ServedByError, match="Qwen/Qwen3-4B"):
        loop.run()
    assert checkpoint_files.latest(tmp_path) is None


def test_failed_trajectories_are_tolerated_up_to_a_fraction(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    record = make_loop(bimodal_policy(), tmp_path / "some", steps=1, failing=2).run_step()
    assert (record.trajectories, record.failed_trajectories) == (8, 2)
    assert record.rollout_errors == {"ServerError": 2}
    assert 0 <= record.trajectory_seconds_p50 <= record.trajectory_seconds_p90 <= record.trajectory_seconds_max
    with pytest.raises(StepFailed, match="3 of 8 trajectories failed") as failed:
        make_loop(bimodal_policy(), tmp_path / "many", steps=1, failing=3).run_step()
    assert not isinstance(failed.value, ServerUnreachable)  # the server answered: a real failure


def test_a_step_the_server_did_not_answer_is_told_apart_and_changes_nothing(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    """Connection refused while a vLLM pod restarts: the learner may wait and run the same step again."""
    refused = "TransportError: http://run-serve:8000/v1/chat/completions: ClientConnectorError: refused"
    loop = make_loop(bimodal_policy(), tmp_path, steps=1, failing=4, failure=refused)
    before = adapter_weights(loop)
    with pytest.raises(ServerUnreachable, match="4 of 8 trajectories failed"):
        loop.run_step()
    assert (loop.step, loop.model_name) == (0, BASE) and checkpoint_files.latest(tmp_path) is None
    assert all(torch.equal(before[k], v) for k, v in adapter_weights(loop).items())
