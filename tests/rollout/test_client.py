"""The rollout client over real HTTP against the scripted server: outcomes, records, limits, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agentrun.environment.judge import DeterministicJudge, JudgeError
from agentrun.mailbox import queries
from agentrun.mailbox.records import Scenario
from agentrun.rollout import client as rollout
from agentrun.rollout.trajectory import Trajectory, read_jsonl, write_jsonl
from agentrun.scripted.policies import Mistake
from agentrun.scripted.server import Fault, Faults, PolicyName
from agentrun.scripted.serving import ScriptedServer
from agentrun.spec.models import EnvironmentSpec, RolloutSpec
from tests.rollout.conftest import MODEL, Sample

Serve = Callable[..., ScriptedServer]


def flat(groups: list[list[Trajectory]]) -> list[Trajectory]:
    return [trajectory for group in groups for trajectory in group]


def test_oracle_answers_correctly_citing_its_sources(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    trajectories = flat(sample(oracle_server, scenarios[:12]))
    for trajectory, scenario in zip(trajectories, scenarios[:12], strict=True):
        assert not trajectory.failed, trajectory.exception
        assert trajectory.reward is not None and trajectory.reward.outcome == "correct"
        assert trajectory.reward.total > 1.0
        assert trajectory.answer_correct is True
        assert trajectory.episode is not None
        assert trajectory.episode.answer == scenario.answer
        assert set(trajectory.episode.sources) == set(scenario.message_ids)
        assert trajectory.episode.found_right_email and trajectory.episode.read_right_email


def test_every_turn_records_tokens_logprobs_and_the_serving_model(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    (trajectory,) = flat(sample(oracle_server, scenarios[:1]))
    assert trajectory.served_by == {MODEL}
    assert trajectory.episode is not None and len(trajectory.turns) == trajectory.episode.turns
    for turn in trajectory.turns:
        assert turn.model == MODEL
        assert turn.token_ids and turn.logprobs and turn.prompt_token_ids
        assert len(turn.token_ids) == len(turn.logprobs)
        assert turn.usage is not None and turn.usage.completion_tokens == len(turn.token_ids)
        assert turn.latency_seconds > 0
        # the assistant message follows the request's messages in the recorded conversation
        assert trajectory.messages[turn.prompt_messages]["role"] == "assistant"
    assert trajectory.timings.wall_seconds >= sum(turn.latency_seconds for turn in trajectory.turns)


@pytest.mark.parametrize(
    ("mistake", "outcome"),
    [
        (Mistake.UNPARSEABLE, "unparseable"),
        (Mistake.UNKNOWN_TOOL, "unknown_tool"),
        (Mistake.BAD_ARGUMENTS, "bad_arguments"),
        (Mistake.WRONG_ANSWER, "wrong"),
        (Mistake.DONT_KNOW, "dont_know"),
        (Mistake.INVALID_READ, "out_of_turns"),
        (Mistake.WRONG_SOURCES, "correct"),
    ],
)
def test_noisy_mistakes_get_their_outcome(
    serve: Serve, scenarios: list[Scenario], sample: Sample, mistake: Mistake, outcome: str
) -> None:
    server = serve(policy=PolicyName.NOISY, mistakes={mistake: 1.0})
    (trajectory,) = flat(sample(server, scenarios[:1], env=EnvironmentSpec(max_turns=4)))
    assert trajectory.reward is not None and trajectory.reward.outcome == outcome
    assert trajectory.episode is not None
    if mistake is Mistake.INVALID_READ:
        assert trajectory.episode.read_invalid_id and not trajectory.reward.no_invalid_read
    if mistake is Mistake.WRONG_SOURCES:
        assert not trajectory.reward.sources_correct
    if mistake in (Mistake.UNPARSEABLE, Mistake.UNKNOWN_TOOL, Mistake.BAD_ARGUMENTS):
        assert trajectory.episode.error == outcome and trajectory.reward.total < -1.5


def test_noisy_policy_replays_with_its_seed(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(policy=PolicyName.NOISY, mistakes={m: 0.08 for m in Mistake})

    def messages(seed: int) -> list[list[dict[str, object]]]:
        return [t.messages for t in flat(sample(server, scenarios[:6], 2, seed=seed))]

    first = messages(seed=1)
    assert messages(seed=1) == first
    assert messages(seed=2) != first


def test_groups_have_group_size_samples_with_distinct_seeds(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    groups = sample(oracle_server, scenarios[:3], 4, seed=100)
    assert [len(group) for group in groups] == [4, 4, 4]
    for index, group in enumerate(groups):
        assert {t.scenario_id for t in group} == {scenarios[index].id}
        assert [t.group_index for t in group] == [index] * 4
        assert [t.sample_index for t in group] == [0, 1, 2, 3]
    assert sorted(t.seed for t in flat(groups)) == list(range(100, 112))


def test_concurrency_limit_holds_across_groups(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(latency_ms=20)
    trajectories = flat(sample(server, scenarios[:4], 3, concurrency=3))
    assert not any(t.failed for t in trajectories)
    assert server.stats.max_in_flight == 3


@pytest.mark.parametrize("fault", [Fault.UNAVAILABLE, Fault.RATE_LIMITED, Fault.DROP])
def test_transient_failures_are_retried(serve: Serve, scenarios: list[Scenario], sample: Sample, fault: Fault) -> None:
    server = serve(faults=Faults(first_requests=(fault, fault)))
    (trajectory,) = flat(sample(server, scenarios[:1], max_retries=2))
    assert not trajectory.failed, trajectory.exception
    assert trajectory.retries == 2 and trajectory.turns[0].retries == 2
    assert trajectory.reward is not None and trajectory.reward.outcome == "correct"


def test_retries_run_out(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(faults=Faults(first_requests=(Fault.UNAVAILABLE,) * 3))
    (trajectory,) = flat(sample(server, scenarios[:1], max_retries=2))
    assert trajectory.failed and (trajectory.exception or "").startswith("StatusError: HTTP 503")
    assert trajectory.retries == 2 and trajectory.reward is None and trajectory.turns == []


def test_a_request_timeout_is_a_failed_attempt(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(faults=Faults(first_requests=(Fault.STALL,), stall_seconds=2.0))
    (timed_out,) = flat(sample(server, scenarios[:1], request_timeout_seconds=0.2, max_retries=0))
    assert timed_out.failed and (timed_out.exception or "").startswith("RequestTimeout")
    assert timed_out.reward is None and timed_out.retries == 0


def test_timeout_then_retry_succeeds(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(faults=Faults(first_requests=(Fault.STALL,), stall_seconds=2.0))
    (trajectory,) = flat(sample(server, scenarios[:1], request_timeout_seconds=0.2, max_retries=1))
    assert not trajectory.failed and trajectory.retries == 1


def test_client_errors_are_not_retried(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    (trajectory,) = flat(sample(oracle_server, scenarios[:1], model="step-000404", max_retries=3))
    exception = trajectory.exception or ""
    assert exception == "StatusError: HTTP 404 Not Found: The model `step-000404` does not exist."
    assert trajectory.retries == 0


class _FailingJudge(DeterministicJudge):
    def __init__(self, fails_on: str) -> None:
        self.fails_on = fails_on

    async def is_correct(self, question: str, reference: str, answer: str) -> bool:
        if question == self.fails_on:
            raise JudgeError("judge endpoint down")
        return await super().is_correct(question, reference, answer)


def test_one_failing_trajectory_does_not_fail_the_batch(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    unknown = scenarios[1].model_copy(update={"question": "What question is this, that no dataset asks?"})
    groups = sample(oracle_server, [scenarios[0], unknown, scenarios[2]], 2)
    assert [[t.failed for t in group] for group in groups] == [[False, False], [True, True], [False, False]]
    assert all((t.exception or "").startswith("StatusError: HTTP 400 Bad Request") for t in groups[1])
    assert all(t.reward is not None and t.reward.outcome == "correct" for t in groups[0] + groups[2])


def test_a_judge_failure_is_recorded_on_its_trajectory(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    ok, broken = flat(sample(oracle_server, scenarios[:2], judge=_FailingJudge(scenarios[1].question)))
    assert not ok.failed and ok.reward is not None
    assert broken.exception == "JudgeError: judge endpoint down" and broken.reward is None
    assert broken.episode is not None and broken.episode.answer == scenarios[1].answer


def completion(content: str | None, *calls: tuple[str, dict[str, Any] | str]) -> dict[str, Any]:
    """A chat completion with these tool calls, each (name, arguments as an object or as raw text)."""
    tool_calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
        for i, (name, arguments) in enumerate((name, a if isinstance(a, str) else json.dumps(a)) for name, a in calls)
    ]
    message = {"role": "assistant", "content": content, "tool_calls": tool_calls}
    choice = {"index": 0, "finish_reason": "tool_calls", "message": message, "token_ids": [5]}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": MODEL, "choices": [choice]}


def sample_replies(
    mailbox: queries.Mailbox, scenario: Scenario, replies: list[dict[str, Any]]
) -> tuple[Trajectory, list[Any]]:
    """One trajectory from a real HTTP server that sends `replies` in turn, JSON-encoded by Python's json
    (which escapes a lone surrogate as valid JSON), and the request bodies it received."""
    received: list[Any] = []

    async def completions(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(body=json.dumps(replies[len(received) - 1]).encode(), content_type="application/json")

    async def go() -> Trajectory:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with rollout.RolloutClient(
                f"http://127.0.0.1:{port}/v1", RolloutSpec(), EnvironmentSpec(), mailbox, DeterministicJudge()
            ) as client:
                return await client.run(scenario, MODEL)
        finally:
            await runner.cleanup()

    return asyncio.run(go()), received


def test_a_model_s_lone_surrogates_are_sent_back_and_recorded(
    mailbox: queries.Mailbox, scenarios: list[Scenario], tmp_path: Path
) -> None:
    # raw lone surrogates in the content, in a keyword and in the answer: the server escapes them in JSON
    replies = [
        completion("\ud83d let me search", ("search_emails", '{"keywords": ["\ud83d", "x"], "to_addr": "\udc00"}')),
        completion(None, ("read_email", {"message_id": "\ud800"})),
        completion("\udfff", ("return_final_answer", '{"answer": "\ud83d", "sources": ["\ud800"]}')),
    ]
    trajectory, received = sample_replies(mailbox, scenarios[0], replies)
    assert not trajectory.failed, trajectory.exception
    assert trajectory.reward is not None and trajectory.reward.outcome == "wrong"
    assert trajectory.episode is not None and trajectory.episode.answer == "\ud83d"
    assert trajectory.episode.sources == ["\ud800"] and trajectory.episode.read_invalid_id
    assert [turn.content for turn in trajectory.turns] == ["\ud83d let me search", None, "\udfff"]
    # the trajectory keeps what the model wrote; the server gets what its tokenizer can encode (vLLM: 400)
    assert received[1]["messages"][2]["content"] == "\ufffd let me search"
    assert received[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == \
        '{"keywords": ["\ufffd", "x"], "to_addr": "\ufffd"}'
    for name in ("t.jsonl", "t.jsonl.gz"):
        write_jsonl(tmp_path / name, [trajectory])
        assert read_jsonl(tmp_path / name) == [trajectory]


def test_a_made_up_tool_name_with_a_lone_surrogate_is_an_unknown_tool(
    mailbox: queries.Mailbox, scenarios: list[Scenario]
) -> None:
    trajectory, _ = sample_replies(mailbox, scenarios[0], [completion(None, ("\ud83d_search", {"keywords": ["x"]}))])
    assert not trajectory.failed, trajectory.exception
    assert trajectory.reward is not None and trajectory.reward.outcome == "unknown_tool"
    assert "\\ud83d_search" in (trajectory.episode.error_detail if trajectory.episode else "")


def test_check_served_by_catches_a_wrong_adapter(serve: Serve, scenarios: list[Scenario], sample: Sample) -> None:
    server = serve(models=("step-000002",), faults=Faults(served_model="base-model"))
    trajectories = flat(sample(server, scenarios[:2], model="step-000002"))
    assert all(t.served_by == {"base-model"} for t in trajectories)
    with pytest.raises(rollout.ServedByError, match="'step-000002'.*'base-model' served 2"):
        rollout.check_served_by(trajectories, "step-000002")


def test_check_served_by_accepts_the_expected_adapter(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    rollout.check_served_by(flat(sample(oracle_server, scenarios[:2])), MODEL)


def test_retry_policy() -> None:
    assert 0.25 <= rollout.backoff_seconds(1, 0.5) <= 0.5
    assert 2.0 <= rollout.backoff_seconds(4, 0.5) <= 4.0
    assert rollout.backoff_seconds(40, 0.5) <= rollout.MAX_BACKOFF_SECONDS
