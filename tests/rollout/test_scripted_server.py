"""The scripted server's HTTP contract, checked with the official OpenAI client and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from agentrun.mailbox.records import Scenario
from agentrun.scripted import tokens
from agentrun.scripted.serving import ScriptedServer
from tests.rollout.conftest import MODEL, Sample


@pytest.fixture
def client(oracle_server: ScriptedServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=oracle_server.base_url, api_key="EMPTY", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(oracle_server: ScriptedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=oracle_server.base_url.removesuffix("/v1")) as raw:
        yield raw


def conversation(scenario: Scenario) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": f"You search the inbox of {scenario.inbox_address}."},
        {"role": "user", "content": scenario.question},
    ]


def test_health_and_models(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    models = http.get("/v1/models").json()
    assert models["object"] == "list" and [card["id"] for card in models["data"]] == [MODEL]


def test_a_tool_call_with_vllm_token_ids_and_logprobs(client: openai.OpenAI, scenarios: list[Scenario]) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=conversation(scenarios[0]),
        logprobs=True,
        top_logprobs=2,
        extra_body={"return_token_ids": True},
    )
    assert completion.model == MODEL and completion.object == "chat.completion"
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "search_emails"
    assert json.loads(call.function.arguments)["keywords"]
    prompt_ids = (completion.model_extra or {})["prompt_token_ids"]
    token_ids = (choice.model_extra or {})["token_ids"]
    assert scenarios[0].question in tokens.decode(prompt_ids)
    assert tokens.decode(token_ids).endswith("</tool_call><|im_end|>")
    assert choice.logprobs is not None and choice.logprobs.content is not None
    assert [bytes(entry.bytes or []) for entry in choice.logprobs.content] == [tokens.token_bytes(t) for t in token_ids]
    assert all(len(entry.top_logprobs) == 2 and entry.logprob < 0 for entry in choice.logprobs.content)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (len(prompt_ids), len(token_ids))


def test_token_ids_are_only_returned_on_request(client: openai.OpenAI, scenarios: list[Scenario]) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=conversation(scenarios[0]))
    assert "prompt_token_ids" not in (completion.model_extra or {})
    assert completion.choices[0].logprobs is None


def test_prompts_extend_the_previous_turn_like_a_chat_template(
    oracle_server: ScriptedServer, scenarios: list[Scenario], sample: Sample
) -> None:
    ((trajectory,),) = sample(oracle_server, scenarios[:1])
    for before, after in zip(trajectory.turns, trajectory.turns[1:]):
        assert before.prompt_token_ids and before.token_ids and after.prompt_token_ids
        assert after.prompt_token_ids[: len(before.prompt_token_ids) + len(before.token_ids)] == (
            before.prompt_token_ids + before.token_ids
        )


def test_max_tokens_cuts_the_reply(client: openai.OpenAI, scenarios: list[Scenario]) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=conversation(scenarios[0]), max_tokens=12, extra_body={"return_token_ids": True}
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "length" and not choice.message.tool_calls
    token_ids = (choice.model_extra or {})["token_ids"]
    assert len(token_ids) == 12 and choice.message.content == tokens.decode(token_ids)
    assert (choice.message.content or "").startswith("<tool_call>\n{")


def test_n_choices_and_tool_choice_none(client: openai.OpenAI, scenarios: list[Scenario]) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=conversation(scenarios[0]), n=3, tool_choice="none"
    )
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    for choice in completion.choices:
        assert choice.finish_reason == "stop" and not choice.message.tool_calls
        assert "<tool_call>" in (choice.message.content or "")


def test_unknown_model_is_vllms_404(client: openai.OpenAI, http: httpx.Client, scenarios: list[Scenario]) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="step-000404", messages=conversation(scenarios[0]))
    assert raised.value.status_code == 404
    reply = http.post("/v1/chat/completions", json={"model": "step-000404", "messages": conversation(scenarios[0])})
    assert reply.status_code == 404
    message = "The model `step-000404` does not exist."
    assert reply.json() == {"error": {"message": message, "type": "NotFoundError", "param": "model", "code": 404}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": [{"content": "hi"}]}, "messages.0.role"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": -1}, "temperature"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 0}, "n"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}, "stream"),
    ],
)
def test_malformed_requests_are_400_naming_the_field(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("BadRequestError", 400, param)
    assert f"'{param}'" in error["message"]


def test_a_question_outside_the_dataset_is_400(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "What is not in the dataset?"}]}
    reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "messages" and "no scenario" in reply.json()["error"]["message"]


def test_a_body_that_is_not_json_is_400(http: httpx.Client) -> None:
    reply = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"]["type"] == "BadRequestError"
