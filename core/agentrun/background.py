"""Running an OpenAI-compatible server off the caller's main thread: in a daemon thread (tests) or in
a child process (benchmarks: a model server should not share its clients' interpreter and GIL).

Generic over the app or the command; the scripted and the embedded servers both run through these.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Self

import uvicorn
from fastapi import FastAPI

from agentrun.rollout.health import wait_healthy


def uvicorn_config(
    app: FastAPI, host: str, port: int, log_level: str, graceful_seconds: float | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
        timeout_graceful_shutdown=graceful_seconds,
    )  # fmt: skip


class ThreadServer:
    """`app` on 127.0.0.1 at a free port in a daemon thread; a context manager.

    The socket is bound before the thread starts (the port cannot be taken in between) and `start`
    returns once `/health` answers, which for this server means the engine thread is running.
    """

    def __init__(self, app: FastAPI, log_level: str = "warning", graceful_seconds: float = 0.5) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        # Requests still running at stop are cancelled after `graceful_seconds`.
        config = uvicorn_config(app, "127.0.0.1", self.port, log_level, graceful_seconds=graceful_seconds)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`.../v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60.0) -> Self:
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child, before exec: on Linux the kernel sends it SIGTERM when the process that started it
    dies, so a run killed with SIGKILL (the OOM killer, `kill -9`) does not leave its server behind
    holding the model's memory. (Strictly, when the thread that started it ends: start servers from a
    thread that outlives them, as the runner's main thread does.) Elsewhere only `stop` ends them."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def python_module(module: str, args: Sequence[str]) -> list[str]:
    """`python -m <module> <args>` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def agentrun_env() -> dict[str, str]:
    """This process's environment, with a PYTHONPATH that makes a child import agentrun the way this
    process does, whatever PYTHONPATH it was started with."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}


class ProcessServer:
    """`<command> --port P` in a child process on `port` (0: a free one), with environment `env` (None:
    this process's); a context manager. `module` makes one of agentrun's own servers.

    `pid` lets a benchmark read the server's CPU time.
    """

    def __init__(self, command: Sequence[str], port: int = 0, env: Mapping[str, str] | None = None) -> None:
        self.port: int = port
        if not port:
            with socket.socket() as probe:  # a free port; the child binds it again a moment later
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self._command = [*command, "--port", str(self.port)]
        self._env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def module(cls, module: str, args: Sequence[str], port: int = 0) -> ProcessServer:
        return cls(python_module(module, args), port, agentrun_env())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server process is not started")
        return self._process.pid

    def start(self, timeout: float = 120.0) -> Self:
        process = self._process = subprocess.Popen(self._command, env=self._env, preexec_fn=_die_with_parent)
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

    def __enter__(self) -> Self:
        """Starts it, unless `start` already did (with a timeout of the caller's choosing)."""
        return self if self._process is not None else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
