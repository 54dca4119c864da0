"""Demonstrations: the oracle's episodes as the environment plays them, and user JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentrun import demonstrations
from agentrun.environment.email_env import EmailEnvironment
from agentrun.environment.episode import ToolCall
from agentrun.mailbox import queries, schema
from agentrun.rollout.trajectory import Timings, Trajectory
from agentrun.scripted.knowledge import Knowledge


def test_oracle_episodes_are_what_the_environment_produces(dataset: Path) -> None:
    shown = demonstrations.oracle(dataset, "train", limit=5)
    assert len(shown) == 5
    known = Knowledge(dataset)
    mailbox = queries.Mailbox(dataset / schema.EMAILS_DB)
    for demonstration in shown:
        scenario = known.scenario_for(demonstration.messages)
        assert scenario.split == "train"
        env = EmailEnvironment(mailbox, scenario)
        replay = env.initial_messages()
        assert demonstration.messages[: len(replay)] == replay
        assert demonstration.tools == env.tools
        for message in demonstration.messages[len(replay) :]:
            if message["role"] == "assistant":
                calls = [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
                replay += [message, *env.respond(None, calls)]
        assert replay == demonstration.messages
        assert env.episode.answer == scenario.answer and env.episode.sources_correct
    known.close()
    mailbox.close()


def test_plain_and_trajectory_lines_are_read(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    trajectory = Trajectory(scenario_id=1, question="q", model="m", messages=messages, timings=Timings(wall_seconds=1))
    path = tmp_path / "demos.jsonl"
    path.write_text(json.dumps({"messages": messages, "tools": []}) + "\n\n" + trajectory.model_dump_json() + "\n")
    plain, from_trajectory = demonstrations.read_jsonl(path)
    assert (plain.messages, plain.tools) == (messages, [])
    assert from_trajectory.messages == messages and from_trajectory.tools  # the environment's tools


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(demonstrations.DemonstrationError, match="no demonstrations file"):
        demonstrations.read_jsonl(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("bad", ["{not json", '["a list"]', '{"messages": [{"content": "no role"}]}',
                                 '{"messages": [{"role": "user", "content": "no reply"}]}',
                                 '{"scenario_id": 1, "question": "no timings"}'])
def test_a_bad_line_is_named_by_its_number(tmp_path: Path, bad: str) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    path = tmp_path / "demos.jsonl"
    path.write_text(f"{good}\n{good}\n{bad}\n")
    with pytest.raises(demonstrations.DemonstrationError, match=r"demos\.jsonl:3: "):
        demonstrations.read_jsonl(path)
