"""The learner's progress-aware liveness: /healthz answers 200 while the learner starts and while steps
complete, and 503 once none has for learner.stallTimeoutSeconds of training, saying why once per stall (the
learner posts that as an Event and in status.progress.stalled)."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("torch")

from agentrun.workloads.liveness import Liveness  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_learner_without_a_step_for_the_timeout_is_not_live_and_says_why_once() -> None:
    clock, told = Clock(), []
    liveness = Liveness(60, on_stall=told.append, clock=clock)
    clock.now += 3600  # waiting for the server and loading the model: alive, however long
    assert liveness.check() == (True, "starting: waiting for the server or loading the model")
    liveness.training_started()
    clock.now += 60
    assert liveness.check() == (True, "training: last progress 60 s ago")
    clock.now += 1
    alive, why = liveness.check()
    assert not alive and why.startswith("stalled: no step completed for 61 s (learner.stallTimeoutSeconds 60)")
    assert liveness.check()[0] is False and told == [why]  # told once per stall, however often probed
    liveness.step_done(None)  # type: ignore[arg-type]  # the record is not read
    assert liveness.check()[0] is True
    clock.now += 120
    assert liveness.check()[0] is False and len(told) == 2  # a new stall is told again
    liveness.waiting("the server to come back")  # a server that is down is not the learner's stall
    clock.now += 600
    assert liveness.check() == (True, "waiting for the server to come back")
    liveness.training_started()
    clock.now += 60
    assert liveness.check()[0] is True and len(told) == 2


def test_the_probe_endpoint_answers_200_then_503() -> None:
    clock = Clock()
    liveness = Liveness(5, clock=clock)
    server = liveness.serve(0, host="127.0.0.1")
    liveness.training_started()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        healthy = httpx.get(f"{url}/healthz")
        assert (healthy.status_code, healthy.text) == (200, "training: last progress 0 s ago")
        clock.now += 6
        stalled = httpx.get(f"{url}/healthz")
        assert stalled.status_code == 503 and stalled.text.startswith("stalled: no step completed for 6 s")
        assert httpx.get(f"{url}/metrics").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
