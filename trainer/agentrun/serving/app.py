"""The HTTP routes: vLLM's OpenAI-compatible endpoints in front of the engine.

`/v1/chat/completions`, `/v1/models`, `/v1/load_lora_adapter`, `/v1/unload_lora_adapter` (always on,
as with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`), `/health` and `/metrics`. Errors use vLLM's body
`{"error": {"message", "type", "param", "code"}}` and its status codes. A request naming a model that is
neither the base nor a loaded adapter goes through the filesystem resolver (`--adapters-dir`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from transformers import PreTrainedTokenizerBase

from agentrun.rollout import trajectory
from agentrun import wire
from agentrun.serving import adapters, completions, metrics
from agentrun.serving.engine import Engine, Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """What the routes need to know about the base model."""

    name: str  # served name: the --model argument, as vLLM serves it
    root: str  # where its weights were loaded from
    tokenizer: PreTrainedTokenizerBase
    max_model_len: int
    eos_ids: frozenset[int]
    defaults: completions.Defaults
    adapters_dir: Path | None


class ApiError(Exception):
    def __init__(self, message: str, status: int, err_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.body = wire.error_body(message, err_type, status, param)
        self.status = status


def _json(body: dict[str, Any], status: int = 200) -> Response:
    # trajectory.to_json: a tool call's arguments are the model's text, lone surrogates included.
    return Response(trajectory.to_json(body), status_code=status, media_type="application/json")


def _not_found(name: str, detail: str = "") -> ApiError:
    return ApiError(f"The model `{name}` does not exist.{detail}", 404, "NotFoundError", "model")


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise ApiError("the request body is not valid JSON", 400, "BadRequestError") from None
    if not isinstance(data, dict):
        raise ApiError("the request body must be a JSON object", 400, "BadRequestError")
    return data


def _model_card(name: str, root: str, parent: str | None, max_model_len: int | None) -> dict[str, Any]:
    now = int(time.time())
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission", "created": now,
        "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True, "allow_search_indices": False,
        "allow_view": True, "allow_fine_tuning": False, "organization": "*", "group": None, "is_blocking": False,
    }  # fmt: skip
    return {"id": name, "object": "model", "created": now, "owned_by": "vllm", "root": root, "parent": parent,
            "max_model_len": max_model_len, "permission": [permission]}  # fmt: skip


def create_app(served: ServedModel, engine: Engine, server_metrics: metrics.ServerMetrics) -> FastAPI:
    """The app; the engine thread runs from startup to shutdown."""
    registry = engine.adapters
    resolving: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="agentrun model server", lifespan=lifespan)
    app.state.engine = engine

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return _json(error.body, error.status)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> Response:
        log.exception("request failed", exc_info=error)
        return _json(wire.error_body(f"{type(error).__name__}: {error}", "InternalServerError", 500), 500)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(server_metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    @app.get("/v1/models")
    async def list_models() -> Response:
        cards = [_model_card(served.name, served.root, None, served.max_model_len)]
        cards += [_model_card(name, str(path), served.name, None) for name, path in registry.paths().items()]
        return _json({"object": "list", "data": cards})

    async def load(name: str, path: Path) -> None:
        try:
            await asyncio.to_thread(registry.load, name, path)
        except adapters.AdapterError as error:
            raise ApiError(error.message, error.status, error.err_type) from error

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(request: Request) -> Response:
        data = await _json_object(request)
        name, path = data.get("lora_name"), data.get("lora_path")
        if not (isinstance(name, str) and name and isinstance(path, str) and path):
            raise ApiError("Both 'lora_name' and 'lora_path' must be provided.", 400, "Bad Request")  # vLLM 0.32's type
        async with resolving[name]:
            if data.get("load_inplace") and name in registry:
                await asyncio.to_thread(registry.unload, name)
            await load(name, Path(path))
        return Response(f"Success: LoRA adapter '{name}' added successfully.", status_code=200)

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(request: Request) -> Response:
        name = (await _json_object(request)).get("lora_name")
        if not (isinstance(name, str) and name):
            raise ApiError("'lora_name' needs to be provided to unload a LoRA adapter.", 400, "InvalidUserInput")
        async with resolving[name]:
            try:
                await asyncio.to_thread(registry.unload, name)
            except adapters.AdapterError as error:
                raise ApiError(error.message, error.status, error.err_type) from error
        return Response(f"Success: LoRA adapter '{name}' removed successfully.", status_code=200)

    async def adapter_for(name: str) -> str | None:
        """None for the base model, else the adapter's name, resolving it from --adapters-dir if needed."""
        if name == served.name:
            return None
        if name in registry:
            return name
        path = adapters.resolve_path(served.adapters_dir, name) if served.adapters_dir else None
        if path is None:
            raise _not_found(name)
        async with resolving[name]:
            if name in registry:
                return name
            try:
                adapters.check_adapter(name, path, served.name)
            except adapters.AdapterError as error:  # vLLM's resolver skips it: still "does not exist"
                raise _not_found(name, f" {error.message}") from error
            try:
                await load(name, path)
            except ApiError as error:
                message = f"LoRA adapter '{name}' was found but could not be loaded: {error.body['error']['message']}"
                raise ApiError(message, 400, "BadRequestError") from error
        return name

    async def generate(jobs: list[Job], done: asyncio.Future[None]) -> None:
        try:
            for job in jobs:
                engine.submit(job)
        except adapters.AdapterError as error:  # unloaded between resolution and submission
            for job in jobs:
                job.cancelled = True
            raise ApiError(error.message, error.status, error.err_type, "model") from error
        try:
            await done
        except asyncio.CancelledError:  # the client went away: stop generating for it
            for job in jobs:
                job.cancelled = True
            raise

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            chat = wire.ChatRequest.model_validate(await _json_object(request))
        except ValidationError as error:
            return _json(wire.validation_error_body(error), 400)
        adapter = await adapter_for(chat.model)
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        pending = [chat.n]

        def one_done() -> None:  # on the event loop
            pending[0] -= 1
            if pending[0] == 0 and not finished.done():
                finished.set_result(None)

        try:
            prompt = completions.prompt_ids(served.tokenizer, chat)
            jobs = completions.new_jobs(
                chat, prompt, adapter=adapter, max_model_len=served.max_model_len, defaults=served.defaults,
                done=lambda _: loop.call_soon_threadsafe(one_done),
            )  # fmt: skip
        except completions.RequestError as error:
            raise ApiError(error.message, 400, "BadRequestError", error.param) from error
        await generate(jobs, finished)
        if any(job.finish_reason in ("error", "abort") for job in jobs):
            raise ApiError("Internal server error", 500, "InternalServerError")
        return _json(completions.response_body(chat, prompt, jobs, served.tokenizer, served.eos_ids))

    return app
