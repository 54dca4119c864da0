"""The vLLM contract the learner and evaluator rely on, over real HTTP with the official OpenAI client, held
on `agentrun serve` and on real vLLM alike (each test runs on both; conftest's `server`). What only the
embedded server can show (its engine's counters) is checked where `server.engine` exists; docs/SERVER.md
lists the differences between the two and the tests that show them."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch
from openai.types.chat import ChatCompletion
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agentrun.rollout.adapters import AdapterPublisher
from agentrun.rollout.chat import ChatEndpoint
from tests.serving.conftest import (
    OTHER_BASE_ADAPTER, QUESTIONS, TOOL_ADAPTER, TOOL_ARGUMENTS, TOOLS, Served, attach, chat, prompt_ids,
)  # fmt: skip

pytestmark = pytest.mark.slow
MODEL = "the served base"  # placeholder in parametrized bodies: conftest's `base` replaces it
TOKEN_IDS = {"return_token_ids": True}  # vLLM's extension: prompt_token_ids and choices[].token_ids


@pytest.fixture(scope="module")
def client(server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, model: str, messages: list[dict[str, str]], **fields: Any) -> ChatCompletion:
    """One chat completion; vLLM's extensions go in `extra_body`."""
    return client.chat.completions.create(model=model, messages=messages, **fields)  # type: ignore[arg-type]


def _error(error: openai.APIStatusError) -> dict[str, object]:
    body = error.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == error.status_code
    return dict(body["error"])


def test_a_tool_call_comes_back_as_tool_calls_with_the_prompt_and_token_ids(
    client: openai.OpenAI, tokenizer: PreTrainedTokenizerBase
) -> None:
    messages = chat(QUESTIONS[0])
    reply = ask(client, TOOL_ADAPTER, messages, tools=TOOLS, temperature=0, max_tokens=64, extra_body=TOKEN_IDS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "search_emails"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_ARGUMENTS  # type: ignore[union-attr]
    extra = reply.model_extra or {}
    assert extra["prompt_token_ids"] == prompt_ids(tokenizer, messages, TOOLS)  # the chat template, with tools
    token_ids = (choice.model_extra or {})["token_ids"]
    assert token_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert "<tool_call>" in tokenizer.decode(token_ids)
    assert reply.usage is not None and reply.usage.completion_tokens == len(token_ids)


def test_with_tool_choice_none_the_call_stays_text(client: openai.OpenAI) -> None:
    reply = ask(client, TOOL_ADAPTER, chat(QUESTIONS[1]), tools=TOOLS, tool_choice="none", temperature=0, max_tokens=64)
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert (choice.message.content or "").startswith("<tool_call>")


def test_a_history_holding_the_models_lone_surrogates_is_refused_raw_and_answered_as_the_client_sends_it(
    server: Served,
) -> None:
    """The model wrote "\ud83d" in a call; the next turn's request carries it back. Sent raw (a JSON escape;
    the OpenAI SDK cannot send it at all) no tokenizer encodes it: both servers answer 400. The rollout
    client sends it as U+FFFD, and the episode goes on."""
    call = {"id": "call-1", "type": "function",
            "function": {"name": "search_emails", "arguments": '{"keywords": ["\ud83d"]}'}}
    messages = [*chat(QUESTIONS[0]), {"role": "assistant", "content": "a\udc00b", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call-1", "content": "[]"}]
    body = {"model": TOOL_ADAPTER, "messages": messages, "tools": TOOLS, "max_tokens": 8}
    raw = httpx.post(f"{server.base_url}/chat/completions", content=json.dumps(body), timeout=60,
                     headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "BadRequestError", raw.text

    async def as_the_rollout_client_sends_it() -> str:
        endpoint = ChatEndpoint(server.base_url, "unused", timeout_seconds=60, connections=1)
        try:
            return (await endpoint.complete(body)).choices[0].finish_reason
        finally:
            await endpoint.aclose()

    assert asyncio.run(as_the_rollout_client_sends_it()) in ("stop", "length", "tool_calls")


@pytest.mark.parametrize("turn", ["first", "prefix cached"])
def test_token_ids_decode_to_the_text_and_logprobs_match_a_fresh_forward_pass(
    server: Served, client: openai.OpenAI, tokenizer: PreTrainedTokenizerBase,
    base_model: PreTrainedModel, base: str, turn: str,
) -> None:  # fmt: skip
    messages = chat("Summarise the thread.")
    reused = server.engine.stats.reused_tokens if server.engine else 0
    reply = ask(
        client, base, messages, temperature=1.0, seed=3, max_tokens=24, logprobs=True, top_logprobs=3,
        extra_body=TOKEN_IDS,
    )  # fmt: skip
    if server.engine:
        assert (server.engine.stats.reused_tokens > reused) == (turn == "prefix cached")
    choice = reply.choices[0]
    token_ids = (choice.model_extra or {})["token_ids"]
    assert tokenizer.decode(token_ids, skip_special_tokens=True) == choice.message.content
    prompt = (reply.model_extra or {})["prompt_token_ids"]
    with torch.no_grad():
        logits = base_model(input_ids=torch.tensor([prompt + token_ids])).logits[0, len(prompt) - 1 : -1]
    expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(token_ids)[:, None])[:, 0]
    entries = choice.logprobs.content if choice.logprobs else None
    assert entries is not None and len(entries) == len(token_ids)
    torch.testing.assert_close(torch.tensor([entry.logprob for entry in entries]), expected, atol=1e-4, rtol=0)
    assert all(len(entry.top_logprobs) == 3 for entry in entries)
    assert all(entry.top_logprobs[0].logprob >= entry.logprob for entry in entries)


@pytest.mark.parametrize("turn", ["first", "prefix cached"])
def test_adapter_logprobs_match_the_adapter_forward_pass(
    client: openai.OpenAI, base_model: PreTrainedModel, adapters_dir: Path, turn: str
) -> None:
    messages = chat(QUESTIONS[2])
    reply = ask(
        client, TOOL_ADAPTER, messages, temperature=1.0, seed=0, max_tokens=16, logprobs=True, extra_body=TOKEN_IDS
    )
    token_ids, prompt = (reply.choices[0].model_extra or {})["token_ids"], (reply.model_extra or {})["prompt_token_ids"]
    adapted = attach(base_model, adapters_dir / TOOL_ADAPTER)
    try:
        with torch.no_grad():
            logits = adapted(input_ids=torch.tensor([prompt + token_ids])).logits[0, len(prompt) - 1 : -1]
    finally:
        adapted.unload()  # give the shared base model back without LoRA layers
    expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(token_ids)[:, None])[:, 0]
    entries = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
    served = torch.tensor([entry.logprob for entry in entries or []])
    torch.testing.assert_close(served, expected, atol=1e-4, rtol=0)


def test_loading_an_adapter_lists_it_and_changes_outputs_and_unloading_removes_it(
    server: Served, client: openai.OpenAI, adapters_dir: Path, base: str
) -> None:
    def greedy(model: str) -> str | None:
        reply = ask(client, model, chat(QUESTIONS[0]), temperature=0, max_tokens=32)
        return reply.choices[0].message.content

    root = server.root
    body = {"lora_name": "mine", "lora_path": str(adapters_dir / TOOL_ADAPTER)}
    loaded = httpx.post(f"{root}/v1/load_lora_adapter", json=body)
    assert (loaded.status_code, loaded.text) == (200, "Success: LoRA adapter 'mine' added successfully.")
    cards = {card.id: card for card in client.models.list()}
    assert cards["mine"].model_extra == {**(cards["mine"].model_extra or {}), "parent": base}
    assert cards[base].model_extra is not None and cards[base].model_extra["max_model_len"] == 4096
    assert greedy("mine") != greedy(base)
    again = httpx.post(f"{root}/v1/load_lora_adapter", json=body)
    assert again.status_code == 400 and again.json()["error"]["type"] == "InvalidUserInput"
    unloaded = httpx.post(f"{root}/v1/unload_lora_adapter", json={"lora_name": "mine"})
    assert (unloaded.status_code, unloaded.text) == (200, "Success: LoRA adapter 'mine' removed successfully.")
    assert "mine" not in {card.id for card in client.models.list()}
    with pytest.raises(openai.NotFoundError) as missing:
        greedy("mine")
    error = _error(missing.value)
    assert {**error, "message": ""} == {"message": "", "type": "NotFoundError", "param": "model", "code": 404}
    assert str(error["message"]).startswith("The model `mine` does not exist.")  # vLLM adds "Valid aliases: ..."


def test_the_publisher_keeps_the_newest_adapters_loaded_for_stale_rollouts(
    server: Served, client: openai.OpenAI, adapters_dir: Path
) -> None:
    """rollout.maxStaleness 1: the adapter before the newest still samples, so publishing keeps two loaded."""
    publisher = AdapterPublisher(f"{server.root}/v1", keep=2)
    try:
        for name in ("kept-1", "kept-2", "kept-3"):
            publisher.publish(name, adapters_dir / TOOL_ADAPTER)
        listed = {card.id for card in client.models.list()}
        assert {"kept-2", "kept-3"} <= listed and "kept-1" not in listed
    finally:
        publisher.close()
        for name in ("kept-2", "kept-3"):
            httpx.post(f"{server.root}/v1/unload_lora_adapter", json={"lora_name": name})


def test_the_resolver_loads_a_checkpoint_by_name_and_refuses_another_bases_adapter(
    server: Served, client: openai.OpenAI, adapters_dir: Path, base: str
) -> None:
    ask(client, TOOL_ADAPTER, chat(QUESTIONS[0]), max_tokens=2)
    assert TOOL_ADAPTER in {card.id for card in client.models.list()}
    with pytest.raises(openai.NotFoundError) as refused:
        ask(client, OTHER_BASE_ADAPTER, chat(QUESTIONS[0]), max_tokens=2)
    message = str(_error(refused.value)["message"])
    if server.kind == "agentrun":  # vLLM's resolver skips such an adapter without a word: "does not exist"
        assert "was built for base model 'Qwen/Qwen3-0.6B'" in message and base in message
    else:
        assert message.startswith(f"The model `{OTHER_BASE_ADAPTER}` does not exist.")
    root = server.root
    body = {"lora_name": "other", "lora_path": str(adapters_dir / OTHER_BASE_ADAPTER)}
    loaded = httpx.post(f"{root}/v1/load_lora_adapter", json=body)
    if server.kind == "agentrun":  # vLLM loads it: only its resolver compares the base (docs/SERVER.md)
        assert loaded.status_code == 400 and "was built for base model" in loaded.json()["error"]["message"]
    else:
        assert loaded.status_code == 200, loaded.text
    for name in ("../escape", "/etc", "step-999999"):
        with pytest.raises(openai.NotFoundError):
            ask(client, name, chat(QUESTIONS[0]), max_tokens=2)


@pytest.mark.parametrize(
    ("body", "param", "on_vllm"),
    [
        # vLLM is laxer here (docs/SERVER.md): no model serves the base, an unknown role is rendered as the
        # template renders it, and an empty conversation is refused without naming the field.
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", (200, None)),
        ({"model": MODEL, "messages": []}, "messages", (400, None)),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", (200, None)),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": -1}, "temperature",
         (400, "temperature")),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5000}, "max_tokens",
         (400, "max_tokens")),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}, "top_logprobs",
         (400, "top_logprobs")),
    ],
)
def test_malformed_requests_are_400_naming_the_field(
    server: Served, base: str, body: dict[str, object], param: str, on_vllm: tuple[int, str | None]
) -> None:
    sent = {**body, **({"model": base} if "model" in body else {})}
    reply = httpx.post(f"{server.base_url}/chat/completions", json={**sent, "max_tokens": body.get("max_tokens", 2)},
                       timeout=60)
    status, named = (400, param) if server.kind == "agentrun" else on_vllm
    assert reply.status_code == status, reply.text
    if status == 400:
        error = reply.json()["error"]
        assert (error["type"], error["param"], error["code"]) == ("BadRequestError", named, 400)
        assert named is None or named.split(".")[0] in error["message"]


def test_adapter_endpoints_answer_with_vllms_errors(server: Served) -> None:
    root = server.root
    missing_field = httpx.post(f"{root}/v1/load_lora_adapter", json={"lora_name": "x"})
    assert missing_field.status_code == 400 and missing_field.json()["error"]["type"] == "Bad Request"
    no_adapter = httpx.post(f"{root}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/nonexistent"})
    assert no_adapter.status_code == 404 and no_adapter.json()["error"]["message"] == (
        "Loading lora x failed: No adapter found for /nonexistent"
    )
    unknown = httpx.post(f"{root}/v1/unload_lora_adapter", json={"lora_name": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"] == {
        "message": "The lora adapter 'x' cannot be found.", "type": "NotFoundError", "param": None, "code": 404,
    }  # fmt: skip


def test_concurrent_requests_share_forward_passes_and_each_matches_its_own_run_alone(
    server: Served, client: openai.OpenAI, base: str
) -> None:
    # Prompts of different lengths, on the base model and on an adapter: batches mix positions and adapters.
    requests = [(base if i % 2 else TOOL_ADAPTER, f"Question {i}: " + "who wrote it? " * i) for i in range(6)]

    def greedy(request: tuple[str, str]) -> list[int]:
        model, question = request
        reply = ask(client, model, chat(question), temperature=0, max_tokens=12, extra_body=TOKEN_IDS)
        return list((reply.choices[0].model_extra or {})["token_ids"])

    alone = [greedy(request) for request in requests]
    before = server.engine.stats.max_batch if server.engine else 0
    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(greedy, requests))
    if server.engine is None:
        # vLLM's CPU kernels are not batch-invariant: the random tiny model's near-tied logits make greedy
        # choices differ with the batch (docs/SERVER.md); each request is still answered
        assert all(together)
        return
    assert server.engine.stats.max_batch > max(before, 1)
    assert together == alone


def test_seeded_requests_too_long_to_share_a_scheduling_step_are_all_answered(
    client: openai.OpenAI, base: str
) -> None:
    """GRPO's rollouts: many seeded samples at once, with long prompts. On vLLM's CPU build a prompt split
    over steps killed the engine (agentrun.vllm.cpu_scheduling_args); each of these prompts is over half of
    vLLM's default 2,048-token step there."""
    question = "Who wrote the email about the quarterly numbers? " * 110

    def sample(seed: int) -> list[int]:
        reply = ask(client, base, chat(f"{seed}: {question}"), temperature=1.0, seed=seed, max_tokens=4,
                    extra_body=TOKEN_IDS)  # fmt: skip
        assert len((reply.model_extra or {})["prompt_token_ids"]) > 1100
        return list((reply.choices[0].model_extra or {})["token_ids"])

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(sample, range(8)))
    assert all(together)
    assert sample(3) == sample(3)  # the server is still up, and a seed still replays


def test_a_seed_replays_a_sample_and_n_gives_distinct_choices(client: openai.OpenAI, base: str) -> None:
    def sample(seed: int, n: int = 1) -> list[list[int]]:
        reply = ask(client, base, chat("Anything."), temperature=1.0, seed=seed, max_tokens=10, n=n,
                    extra_body=TOKEN_IDS)  # fmt: skip
        return [list((choice.model_extra or {})["token_ids"]) for choice in reply.choices]

    assert sample(11) == sample(11)
    assert sample(11) != sample(12)
    first, second = sample(11, n=2)
    assert first == sample(11)[0] and first != second


def test_max_tokens_and_stop_strings_end_a_choice(client: openai.OpenAI, base: str) -> None:
    long = ask(client, base, chat("Go on."), temperature=0, max_tokens=8)
    assert long.choices[0].finish_reason == "length" and long.usage is not None and long.usage.completion_tokens == 8
    text = long.choices[0].message.content or ""
    stop = text[len(text) // 2 :][:3]
    stopped = ask(client, base, chat("Go on."), temperature=0, max_tokens=8, stop=[stop])
    choice = stopped.choices[0]
    assert choice.finish_reason == "stop" and (choice.model_extra or {})["stop_reason"] == stop
    assert choice.message.content == text[: text.find(stop)]


def test_metrics_export_vllms_series(server: Served, client: openai.OpenAI, base: str) -> None:
    ask(client, base, chat("Count me."), max_tokens=3)
    text = httpx.get(server.root + "/metrics").text
    labels = f'{{engine="0",model_name="{base}"}}'
    for series in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:prompt_tokens_total",
                   "vllm:generation_tokens_total", "vllm:e2e_request_latency_seconds_count",
                   "vllm:time_to_first_token_seconds_count"):  # fmt: skip
        assert f"{series}{labels}" in text
    generated = next(line for line in text.splitlines() if line.startswith(f"vllm:generation_tokens_total{labels}"))
    assert float(generated.split()[-1]) >= 3
    kv_usage = next(line for line in text.splitlines() if line.startswith(f"vllm:kv_cache_usage_perc{labels}"))
    assert float(kv_usage.split()[-1]) == 0.0  # every sequence has retired: no slot holds positions
