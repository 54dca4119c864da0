"""Pipelined rollouts (rollout.maxStaleness): which adapter samples which step, the overlap itself, exact
resume, and the served-by check held to the one allowed version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from transformers import PreTrainedModel  # noqa: E402

from agentrun import pipeline  # noqa: E402
from agentrun.rollout.client import ServedByError  # noqa: E402
from agentrun.rollout.trajectory import Trajectory, read_jsonl  # noqa: E402
from agentrun.spec import loading  # noqa: E402
from agentrun.trainer import sft  # noqa: E402
from agentrun.trainer.ahead import RolloutsAhead, sampling_version  # noqa: E402
from agentrun.trainer.learner import Learner, LearnerSettings  # noqa: E402
from agentrun.trainer.loop import LoopSettings, Publish, ServerUnreachable, TrainingLoop  # noqa: E402

from .toys import Rollouts, served_rollouts  # noqa: E402

BASE = "builtin:tiny"
WAIT_SECONDS = 60  # for a condition another thread brings about; a failure, not a pause, when it does not


def test_sampling_version_by_hand() -> None:
    assert [sampling_version(step, 0) for step in (1, 2, 3)] == [0, 1, 2]  # on-policy: the newest adapter
    assert [sampling_version(step, 1) for step in (1, 2, 3, 4)] == [0, 0, 1, 2]
    assert [sampling_version(step, 2) for step in (1, 2, 3, 4, 5)] == [0, 0, 0, 1, 2]


def pipelined_loop(policy: PreTrainedModel, directory: Path, steps: int, staleness: int,
                   rollouts: Callable[[Rollouts], Rollouts] = lambda inner: inner,
                   publish: Publish = lambda name, path: None, **served: object) -> TrainingLoop:
    """A loop whose rollouts come from a server of their own (toys.served_rollouts), which can sample in
    the rollout thread while the learner trains its own weights."""
    server = served_rollouts(policy, directory, BASE, **served)  # type: ignore[arg-type]
    learner = Learner(sft.add_lora(policy, rank=4), LearnerSettings(lr=5e-3), pad_id=0)
    return TrainingLoop(learner, BASE, directory, rollouts(server), publish,
                        LoopSettings(steps=steps, checkpoint_every=2, keep_last=1, max_staleness=staleness),
                        trajectories_file=lambda step: directory / "trajectories" / f"{step}.jsonl")


def adapter(loop: TrainingLoop) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in loop.learner.model.named_parameters() if v.requires_grad}


@pytest.mark.parametrize("staleness", [1, 2])
def test_each_step_samples_from_the_version_k_behind_and_records_it(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path, staleness: int
) -> None:
    records = pipelined_loop(bimodal_policy(), tmp_path, steps=5, staleness=staleness).run()
    versions = [sampling_version(step, staleness) for step in range(1, 6)]
    assert [r.model for r in records] == [BASE if v == 0 else f"step-{v:06d}" for v in versions]
    assert [r.staleness for r in records] == [step - 1 - v for step, v in zip(range(1, 6), versions, strict=True)]
    assert max(r.staleness for r in records) == staleness
    for step, version in zip(range(1, 6), versions, strict=True):
        trajectories = read_jsonl(tmp_path / "trajectories" / f"{step}.jsonl")
        assert {t.policy_version for t in trajectories} == {version}
    # pruning kept every checkpoint a step still sampled from (keep_last=1 is raised to k + 1)
    assert all((tmp_path / f"step-{v:06d}").is_dir() for v in range(5 - staleness, 6))


def test_the_next_step_is_sampled_while_the_learner_trains(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    """With k = 1 step 2's rollouts start before step 1's adapter is published (they need only the base);
    publishing step 1 waits for that, so an unpipelined loop fails here instead of passing by luck."""
    started = {step: threading.Event() for step in (1, 2, 3)}

    def watched(inner: Rollouts) -> Rollouts:
        def rollouts(step: int, name: str) -> list[list[Trajectory]]:
            started[step].set()
            return inner(step, name)
        return rollouts

    def publish(name: str, _: Path) -> None:
        if name == "step-000001":
            assert started[2].wait(WAIT_SECONDS), "step 2's rollouts had not started when step 1 was published"

    pipelined_loop(bimodal_policy(), tmp_path, steps=3, staleness=1, rollouts=watched, publish=publish).run()


def test_on_policy_loop_waits_for_each_adapter(bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path) -> None:
    """k = 0: step s's rollouts start only once step s - 1 is published."""
    published: list[str] = []
    order: list[tuple[int, list[str]]] = []

    def watched(inner: Rollouts) -> Rollouts:
        def rollouts(step: int, name: str) -> list[list[Trajectory]]:
            order.append((step, list(published)))
            return inner(step, name)
        return rollouts

    pipelined_loop(bimodal_policy(), tmp_path, steps=3, staleness=0, rollouts=watched,
                   publish=lambda name, _: published.append(name)).run()
    assert order == [(1, []), (2, ["step-000001"]), (3, ["step-000001", "step-000002"])]


def test_n_steps_equal_half_then_resume_then_half_with_rollouts_in_flight(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    straight = pipelined_loop(bimodal_policy(), tmp_path / "straight", steps=6, staleness=1)
    straight_records = straight.run()

    # The first half stops with step 4's rollouts sampled or in flight (launched when step 3 was
    # published... and step 3 needs version 2): they are dropped, and the resumed loop draws them again.
    first = pipelined_loop(bimodal_policy(), tmp_path / "resumed", steps=6, staleness=1)
    for _ in range(3):
        first.run_step()
    first.close()
    resumed = pipelined_loop(bimodal_policy(), tmp_path / "resumed", steps=6, staleness=1)
    assert resumed.resume() == 3
    resumed_records = resumed.run()

    assert [r.model for r in resumed_records] == [r.model for r in straight_records[3:]]
    assert [r.reward_mean for r in resumed_records] == [r.reward_mean for r in straight_records[3:]]
    expected, got = adapter(straight), adapter(resumed)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert any(v.abs().sum() > 0 for k, v in got.items() if "lora_B" in k)  # it did train


def test_rollouts_served_by_a_newer_adapter_than_allowed_fail_the_step(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    """k = 1: step 3 must be sampled by step-000001. A router that sends it to the newest adapter
    (step-000002) breaks the staleness bookkeeping; the step fails instead of training on it."""
    def newest(step: int, requested: str) -> str:
        return "step-000002" if step == 3 else requested

    loop = pipelined_loop(bimodal_policy(), tmp_path, steps=3, staleness=1, served_as=newest)
    loop.run_step(), loop.run_step()
    with pytest.raises(ServedByError, match="expected from 'step-000001' but 'step-000002' served"):
        loop.run_step()
    loop.close()
    assert loop.step == 2


def test_a_step_the_server_missed_is_drawn_again_and_so_are_those_sampled_meanwhile(
    bimodal_policy: Callable[[], PreTrainedModel], tmp_path: Path
) -> None:
    """The server is away from step 2's rollouts until step 2 is drawn again (k = 1): step 2 fails as
    ServerUnreachable, step 3 (queued or sampled during the outage) is dropped with it, and the rerun
    gives exactly what an undisturbed run gives (a kept failed step 3 would fail the run)."""
    straight = pipelined_loop(bimodal_policy(), tmp_path / "straight", steps=4, staleness=1)
    straight.run()
    draws: list[int] = []

    def flaky(inner: Rollouts) -> Rollouts:
        def rollouts(step: int, name: str) -> list[list[Trajectory]]:
            draws.append(step)
            groups = inner(step, name)
            if 2 in draws and draws.count(2) == 1:  # from step 2's first draw until its second
                for trajectory in groups[0] + groups[1]:
                    trajectory.exception, trajectory.reward = "TransportError: connection refused", None
            return groups
        return rollouts

    loop = pipelined_loop(bimodal_policy(), tmp_path / "flaky", steps=4, staleness=1, rollouts=flaky)
    loop.run_step()
    with pytest.raises(ServerUnreachable, match="step 2: 8 of 8"):
        loop.run_step()
    loop.run()
    assert draws.count(2) == 2 and draws[-3:] == [2, 3, 4]
    expected, got = adapter(straight), adapter(loop)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_discard_waits_for_the_running_step_and_drops_the_queued_ones() -> None:
    draws: list[int] = []
    running, release = threading.Event(), threading.Event()

    def rollouts(step: int, name: str) -> list[list[Trajectory]]:
        draws.append(step)
        if draws == [1, 2]:
            running.set()
            assert release.wait(WAIT_SECONDS)
        return []

    ahead = RolloutsAhead(rollouts, BASE, max_staleness=2, last_step=3)
    try:
        assert ahead.take(1, newest_version=0).version == 0  # steps 1, 2 and 3 all sample the base: queued
        assert running.wait(WAIT_SECONDS)
        release.set()
        ahead.discard()
        assert draws in ([1, 2], [1, 2, 3])  # step 3 cancelled before it started, or finished and dropped
        drawn = len(draws)
        assert [ahead.take(step, newest_version=0).step for step in (2, 3)] == [2, 3]
        assert draws[drawn:] == [2, 3]
    finally:
        ahead.close()


def test_unset_staleness_is_one_and_zero_without_the_importance_correction() -> None:
    quickstart = loading.load_run(Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml")

    def staleness(rollout: dict[str, object], correction: bool = True) -> int:
        spec = quickstart.spec.model_copy(update={
            "rollout": quickstart.spec.rollout.model_copy(update=rollout),
            "training": quickstart.spec.training.model_copy(update={
                "importance_correction": quickstart.spec.training.importance_correction.model_copy(
                    update={"enabled": correction})})})
        return pipeline.max_staleness(quickstart.model_copy(update={"spec": spec}))

    assert staleness({}) == pipeline.DEFAULT_MAX_STALENESS == 1
    assert staleness({}, correction=False) == 0  # older samples are safe to train on only with the correction
    assert staleness({"max_staleness": 0}) == 0 and staleness({"max_staleness": 2}) == 2
