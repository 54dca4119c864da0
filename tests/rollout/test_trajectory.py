"""Trajectory files: JSON Lines, optionally gzip, that read back equal to what was written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agentrun.mailbox.records import Scenario
from agentrun.rollout import trajectory as records
from agentrun.scripted.serving import ScriptedServer
from tests.rollout.conftest import Sample


@pytest.mark.parametrize("name", ["step-000001.jsonl", "step-000001.jsonl.gz"])
def test_jsonl_round_trip(
    tmp_path: Path, oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample, name: str
) -> None:
    unknown = scenarios[1].model_copy(update={"question": "Which question is this?"})
    written = [t for group in sample(oracle_server, [scenarios[0], unknown], 2) for t in group]
    assert written[2].failed and not written[0].failed
    turn = written[0].turns[0]
    assert turn.logprobs is not None
    written[0].turns[0] = turn.model_copy(update={"logprobs": [-math.inf, *turn.logprobs[1:]]})
    path = tmp_path / "trajectories" / name
    records.write_jsonl(path, written)
    assert records.read_jsonl(path) == written
    assert [p.name for p in path.parent.iterdir()] == [name]  # no staging file left behind


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> list[records.Trajectory]:
        raise RuntimeError("interrupted")

    path = tmp_path / "step.jsonl.gz"
    with pytest.raises(RuntimeError):
        records.write_jsonl(path, (t for t in broken()))
    assert list(tmp_path.iterdir()) == []
