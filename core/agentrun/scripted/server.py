"""The scripted server's FastAPI app: vLLM's endpoints in front of a scripted policy, plus test knobs.

Knobs a real server does not have: a modelled per-request latency (an `asyncio.sleep` in the handler,
standing in for generation time), faults injected into the first requests (to exercise the client's
retries and timeouts), a reported model name that differs from the requested one (a misrouted adapter),
and counters of requests in flight (to check a client's concurrency limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from random import Random
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from agentrun import wire
from agentrun.scripted import policies, protocol
from agentrun.scripted.knowledge import Knowledge, UnknownScenario

Policy = Callable[[policies.Plan, Sequence[Mapping[str, Any]], Random], policies.Action]


class PolicyName(StrEnum):
    ORACLE = "oracle"
    NOISY = "noisy"


class Fault(StrEnum):
    UNAVAILABLE = "unavailable"  # 503, as a server that is starting or overloaded answers
    RATE_LIMITED = "rate_limited"  # 429
    DROP = "drop"  # the connection closes in the middle of the response
    STALL = "stall"  # no response until the client disconnects or `stall_seconds` pass


@dataclass(frozen=True)
class Faults:
    first_requests: tuple[Fault, ...] = ()  # fault i hits chat request i (counted from server start)
    stall_seconds: float = 30.0
    served_model: str | None = None  # report this model in every response instead of the requested one


@dataclass(frozen=True)
class ServerConfig:
    dataset_dir: Path
    policy: PolicyName = PolicyName.ORACLE
    models: tuple[str, ...] = ("scripted",)  # served model names; any other is a 404
    latency_ms: float = 0.0
    mistakes: Mapping[policies.Mistake, float] = field(default_factory=dict)  # noisy policy only
    min_turns: int | None = None  # pad plans with extra searches to at least this many turns
    faults: Faults = Faults()


@dataclass
class Stats:
    requests: int = 0  # chat requests received
    in_flight: int = 0
    max_in_flight: int = 0


class _DroppedResponse(Response):
    """Starts a reply and abandons it: the ASGI server closes the connection mid-response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1024")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})


def _json(body: dict[str, Any], status: int = 200) -> Response:
    # pydantic-core's encoder: the stdlib's takes ~5x longer on the thousands of token ids of a reply.
    return Response(pydantic_core.to_json(body), status_code=status, media_type="application/json")


def _error(message: str, err_type: str, status: int, param: str | None = None) -> Response:
    return _json(wire.error_body(message, err_type, status, param), status)


async def _hang(request: Request, seconds: float) -> None:
    """Hold the request until the client gives up on it, or for `seconds`: a server that hangs."""
    await request.body()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def _rng(seed: int | None, position: int, choice: int) -> Random:
    """Seeded requests replay exactly: the stream depends on the seed, the turn and the choice index."""
    return Random(f"{seed}/{position}/{choice}") if seed is not None else Random()


def create_app(config: ServerConfig) -> FastAPI:
    """The app; the dataset is opened now (a bad dataset fails here, not at the first request)."""
    knowledge = Knowledge(config.dataset_dir, min_turns=config.min_turns)
    policy: Policy = policies.oracle
    if config.policy == PolicyName.NOISY:
        policy = functools.partial(policies.noisy, mistakes=config.mistakes)
    stats = Stats()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        knowledge.close()

    app = FastAPI(title="agentrun scripted model server", lifespan=lifespan)
    app.state.stats = stats

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def list_models() -> Response:
        cards = [{"id": name, "object": "model", "owned_by": "agentrun-scripted", "root": name} for name in config.models]
        return _json({"object": "list", "data": cards})

    @app.get("/scripted/stats")
    async def scripted_stats() -> Response:
        return _json(vars(stats))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await _complete(request, stats.requests)
        finally:
            stats.in_flight -= 1

    async def _complete(request: Request, number: int) -> Response:
        faults = config.faults
        fault = faults.first_requests[number - 1] if number <= len(faults.first_requests) else None
        if fault is Fault.UNAVAILABLE:
            return _error("injected fault: service unavailable", "ServiceUnavailableError", 503)
        if fault is Fault.RATE_LIMITED:
            return _error("injected fault: too many requests", "RateLimitError", 429)
        if fault is Fault.DROP:
            return _DroppedResponse()
        if fault is Fault.STALL:
            await _hang(request, faults.stall_seconds)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return _error("the request body is not valid JSON", "BadRequestError", 400)
        if not isinstance(data, dict):
            return _error("the request body must be a JSON object", "BadRequestError", 400)
        try:
            chat = wire.ChatRequest.model_validate(data)
        except ValidationError as error:
            return _json(wire.validation_error_body(error), 400)
        if chat.model not in config.models:
            return _error(f"The model `{chat.model}` does not exist.", "NotFoundError", 404, "model")
        try:
            plan = knowledge.plan_for(data["messages"])
        except UnknownScenario as error:
            return _error(str(error), "BadRequestError", 400, "messages")
        rngs = [_rng(chat.seed, len(chat.messages), index) for index in range(chat.n)]
        actions = [policy(plan, data["messages"], rng) for rng in rngs]
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        return _json(protocol.completion(chat, actions, rngs, faults.served_model or chat.model))

    return app
