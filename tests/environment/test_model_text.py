"""Model text at its worst, from the server's reply through the environment into a recorded trajectory.

A model can write anything, and some of it is hostile to the code that handles it: lone UTF-16
surrogates (JSON's `"\\ud83d"` escape: valid JSON, but UTF-8 cannot encode the result, so serialisers
refuse it), FTS5 syntax, quotes and control characters, huge or nested values, made-up tool names and
argument keys. Each example replays what the rollout client's `_play` does with each turn, without
HTTP: the reply is parsed as the client parses it, the environment answers, the next request's body is
serialised, and the finished episode is judged, scored and recorded; the trajectory is then written
(.jsonl and .jsonl.gz) and must read back equal. Set AGENTRUN_FUZZ_EXAMPLES for a longer local run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentrun.environment import reward, tools
from agentrun.environment.email_env import EmailEnvironment, EpisodeOverError
from agentrun.environment.episode import ToolCall
from agentrun.environment.judge import DeterministicJudge
from agentrun.mailbox import queries
from agentrun.mailbox.records import Scenario
from agentrun.rollout import chat, client
from agentrun.rollout.trajectory import Timings, Trajectory, read_jsonl, to_json, write_jsonl
from agentrun.spec.models import EnvironmentSpec

EXAMPLES = int(os.environ.get("AGENTRUN_FUZZ_EXAMPLES", "200"))
MAX_TOOL_MESSAGE = 4096  # the test mailbox's longest email, read whole, is ~1.1k characters

SURROGATES = ["\ud83d", "\ude00", "\ud800", "\udfff"]
_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),  # every code point, surrogates too
    st.lists(st.sampled_from([*SURROGATES, '"', "\\", "*", "NEAR", "Tahoe", "m1", "\x00", " ", "{"]), max_size=8).map(
        "".join
    ),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_ids = st.sampled_from(["m1", "m2", "m3", "m4", "m5", "m6", "m404"]) | _text  # m4: the future; m6: not alice's
_dates = st.sampled_from(["2001-02-01", "2002-01-01", "2001-05-01T00:00:00+14:00"]) | _text
_well_formed = st.one_of(
    st.tuples(
        st.just("search_emails"),
        st.fixed_dictionaries(
            {"keywords": st.lists(_text | st.just("Tahoe"), min_size=1, max_size=3)},
            optional={
                "from_addr": _text,
                "to_addr": _text,
                "sent_after": _dates,
                "sent_before": _dates,
                "max_results": st.integers(-1, 12),
            },
        ),
    ),
    st.tuples(st.just("read_email"), st.fixed_dictionaries({"message_id": _ids})),
    st.tuples(
        st.just("return_final_answer"),
        st.fixed_dictionaries({"answer": _text | st.just("Tahoe"), "sources": st.lists(_ids, max_size=3)}),
    ),
)
_names = st.sampled_from(list(tools.TOOLS)) | _text
_keys = st.sampled_from(["keywords", "message_id", "answer", "sources", "max_results"]) | _text
# (name, arguments text): mostly well-formed calls with hostile values, else anything at all
_well_formed_calls = _well_formed.map(lambda call: (call[0], json.dumps(call[1])))
_calls = st.one_of(
    _well_formed_calls,
    _well_formed_calls,
    _well_formed_calls,
    st.tuples(_names, st.dictionaries(_keys, _json, max_size=4).map(json.dumps)),
    st.tuples(_names, _json.map(json.dumps) | _text),
)
_call_lists = st.lists(st.tuples(st.sampled_from(["call_0", ""]) | _text, _calls), min_size=1, max_size=3)
_no_call_now_and_then = st.integers(0, 9).flatmap(lambda n: _call_lists if n else st.just([]))  # 1 turn in 10
_turns = st.lists(st.tuples(st.none() | _text, _no_call_now_and_then), min_size=1, max_size=4)


def reply(content: str | None, calls: list[tuple[str, tuple[str, str]]]) -> bytes:
    """A chat completion as a server that escapes non-ASCII text (Python's json) sends it."""
    message = {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, (name, arguments) in calls
        ],
    }
    choice = {
        "index": 0,
        "finish_reason": "tool_calls",
        "message": message,
        "logprobs": {"content": [{"logprob": -math.inf}, {"logprob": -0.25}]},
        "token_ids": [7, 8],
    }
    completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
    return json.dumps(completion | {"prompt_token_ids": [1, 2, 3]}).encode()


def check_tool_message(message: dict[str, Any], call_id: str) -> None:
    assert message["role"] == "tool" and message["tool_call_id"] == call_id
    assert len(message["content"]) <= MAX_TOOL_MESSAGE
    message["content"].encode("utf-8")  # sendable to any server as it is
    json.loads(message["content"])


def play(env: EmailEnvironment, turns: list[Any]) -> Trajectory:
    """One episode as `RolloutClient.run` plays it, each turn's reply given instead of requested."""
    scenario = env.episode.scenario
    messages = env.initial_messages()
    records = []
    for content, calls in turns:
        turn = client._turn(chat._completion(reply(content, calls)), len(messages), 0.01, 0)
        records.append(turn)
        messages.append(client._assistant_message(turn))
        answered = env.respond(turn.content, [ToolCall(c.id, c.name, c.arguments) for c in turn.tool_calls])
        for message, call in zip(answered, turn.tool_calls, strict=False):
            check_tool_message(message, call.id)
        messages += answered
        to_json({"model": "m", "messages": messages, "tools": env.tools}).encode("utf-8")  # the next request
        if env.episode.done:
            break
    episode = env.episode
    assert episode.done
    with pytest.raises(EpisodeOverError):
        env.respond(None, [])
    verdict = None
    if episode.error is None and episode.answer is not None and not reward.is_dont_know(episode.answer):
        verdict = DeterministicJudge.matches(scenario.answer, episode.answer)
    result = reward.score(episode, verdict)
    event(result.outcome.value)
    return Trajectory(
        scenario_id=scenario.id,
        question=scenario.question,
        model="m",
        messages=messages,
        turns=records,
        episode=client._episode_record(episode),
        answer_correct=verdict,
        reward=client._reward_record(result),
        timings=Timings(wall_seconds=0.1),
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trajectories")


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(turns=_turns)
def test_any_model_output_is_answered_recorded_and_read_back(
    mailbox: queries.Mailbox, scenario: Scenario, out: Path, turns: list[Any]
) -> None:
    env = EmailEnvironment(mailbox, scenario, EnvironmentSpec(max_turns=len(turns)))
    trajectory = play(env, turns)
    line = to_json(trajectory)
    event("recorded with escaped surrogates" if "\\ud" in line else "recorded as UTF-8")
    for name in ("step.jsonl", "step.jsonl.gz"):
        write_jsonl(out / name, [trajectory])
        assert read_jsonl(out / name) == [trajectory]
