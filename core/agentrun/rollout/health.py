"""Waiting for a model server to come up: every OpenAI-compatible server agentrun talks to (vLLM, the
embedded and the scripted servers) answers `GET /health` beside its `/v1` API."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

POLL_SECONDS = 0.05


class ServerNotReady(RuntimeError):
    """The server did not answer `/health` with 200 in time, or its process died first."""


def health_url(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1") + "/health"


def wait_healthy(base_url: str, timeout: float, alive: Callable[[], bool] = lambda: True,
                 poll: float = POLL_SECONDS) -> None:
    """Poll `/health` every `poll` seconds until it answers 200; ServerNotReady after `timeout` seconds or
    as soon as `alive()` says the server process is gone."""
    url = health_url(base_url)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while alive() and time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(poll)  # poll interval of a bounded wait
    if not alive():
        raise ServerNotReady(f"the server for {url} exited before it answered (its output above says why)")
    raise ServerNotReady(f"no server answered at {url} within {timeout:g} s")
