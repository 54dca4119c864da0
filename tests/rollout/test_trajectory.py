"""Trajectory files: JSON Lines, optionally gzip, that read back equal to what was written."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize("name", ["step-000001.jsonl", "step-000001.jsonl.gz"])
def test_lone_surrogates_in_any_text_are_written_and_read_back(
    tmp_path: Path, oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample, name: str
) -> None:
    # a model that writes "\\ud83d" in its tool-call JSON gets a lone surrogate into the answer and sources
    ((trajectory,),) = sample(oracle_server, scenarios[:1])
    assert trajectory.episode is not None and trajectory.turns[0].logprobs is not None
    turn = trajectory.turns[0].model_copy(
        update={"content": "\udc00 thinking", "logprobs": [-math.inf, *trajectory.turns[0].logprobs[1:]]}
    )
    episode = trajectory.episode.model_copy(update={"answer": "Tahoe \ud83d", "sources": ["\ud800", "m1"]})
    messages = [*trajectory.messages, {"role": "tool", "tool_call_id": "\udfff", "content": "\U0001f600 é \ud83d"}]
    messages.append({"\ud800 as a key": "which pydantic's encoder would turn into U+FFFD"})
    written = trajectory.model_copy(update={"turns": [turn], "episode": episode, "messages": messages})
    path = tmp_path / name
    records.write_jsonl(path, [written, trajectory])
    assert records.read_jsonl(path) == [written, trajectory]


EXAMPLES = int(os.environ.get("AGENTRUN_FUZZ_EXAMPLES", "300"))  # raise it for a longer local run

# Text as it arrives from JSON: a JSON hop joins a high surrogate and a low one into the character they
# encode, so only strings that made the hop are expected to come back as they went (see `to_json`).
_model_text = st.text(st.characters(codec=None, exclude_categories=())).map(lambda text: json.loads(json.dumps(text)))
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _model_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_model_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
@given(value=_values)
def test_to_json_keeps_any_value_of_model_text(value: object) -> None:
    record = records.Trajectory(scenario_id=1, question="q", model="m", messages=[{"value": value}], timings=TIMINGS)
    for original, kind in [(value, "plain data"), (record, "record")]:
        text = records.to_json(original)
        text.encode("utf-8")  # writable to any file
        recovered = records.from_json(text)
        assert (records.Trajectory.model_validate(recovered) if kind == "record" else recovered) == original


TIMINGS = records.Timings(wall_seconds=1.0)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> list[records.Trajectory]:
        raise RuntimeError("interrupted")

    path = tmp_path / "step.jsonl.gz"
    with pytest.raises(RuntimeError):
        records.write_jsonl(path, (t for t in broken()))
    assert list(tmp_path.iterdir()) == []
