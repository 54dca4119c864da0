"""Running the scripted server: in a background thread on a free port (tests), in a child process on a
free port (benchmarks: a model server does not share its client's interpreter and GIL), or in the
foreground (the `serve-scripted` command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from agentrun.rollout.health import wait_healthy
from agentrun.scripted.server import ServerConfig, Stats, create_app


def _uvicorn_config(
    app: FastAPI, host: str, port: int, log_level: str, graceful_seconds: float | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_seconds,
    )


def serve_forever(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve in the foreground until interrupted."""
    uvicorn.Server(_uvicorn_config(create_app(config), host, port, log_level)).run()


class ScriptedServer:
    """The scripted server on 127.0.0.1 at a free port, in a daemon thread; use it as a context manager.

    The listening socket is bound before the thread starts, so the port cannot be taken in between, and
    `start` returns once `/health` answers.
    """

    def __init__(self, config: ServerConfig, log_level: str = "warning") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._app = create_app(config)
        # Requests still running at stop are cancelled after a short grace period.
        self._server = uvicorn.Server(
            _uvicorn_config(self._app, "127.0.0.1", self.port, log_level, graceful_seconds=0.2)
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`.../v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> Stats:
        stats: Stats = self._app.state.stats
        return stats

    def start(self, timeout: float = 30.0) -> ScriptedServer:
        self._thread.start()
        try:
            wait_healthy(self.base_url, timeout, alive=self._thread.is_alive)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class ScriptedProcess:
    """`agentrun serve-scripted` in a child process on 127.0.0.1 at a free port; a context manager.

    `start` returns once `/health` answers (or raises if the process exits or does not answer in time);
    `pid` lets a benchmark read the server's CPU time.
    """

    def __init__(
        self,
        dataset_dir: Path,
        *,
        models: tuple[str, ...] = ("scripted",),
        latency_ms: float = 0.0,
        min_turns: int | None = None,
        log_level: str = "warning",
    ) -> None:
        with socket.socket() as probe:  # a free port; the child binds it again a moment later
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._command = [
            sys.executable, "-m", "agentrun.cli.scripted", "--dataset", str(dataset_dir), "--port", str(self.port),
            "--latency-ms", str(latency_ms), "--log-level", log_level,
            *(option for model in models for option in ("--model", model)),
            *(("--min-turns", str(min_turns)) if min_turns is not None else ()),
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`.../v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the scripted server process is not started")
        return self._process.pid

    def start(self, timeout: float = 60.0) -> ScriptedProcess:
        # The child imports agentrun the way this process does, whatever PYTHONPATH it was started with.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        process = self._process = subprocess.Popen(self._command, env=env)
        try:
            wait_healthy(self.base_url, timeout, alive=lambda: process.poll() is None)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> ScriptedProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
