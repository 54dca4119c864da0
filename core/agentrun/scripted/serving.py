"""Running the scripted server: in a background thread on a free port (tests), in a child process on a
free port (benchmarks: a model server does not share its client's interpreter and GIL), or in the
foreground (the `serve-scripted` command)."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from agentrun.background import ProcessServer, ThreadServer, agentrun_env, python_module, uvicorn_config
from agentrun.scripted.server import ServerConfig, Stats, create_app


def serve_forever(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve in the foreground until interrupted."""
    uvicorn.Server(uvicorn_config(create_app(config), host, port, log_level)).run()


class ScriptedServer(ThreadServer):
    """The scripted server on 127.0.0.1 at a free port, in a daemon thread; a context manager."""

    def __init__(self, config: ServerConfig, log_level: str = "warning") -> None:
        super().__init__(create_app(config), log_level, graceful_seconds=0.2)

    @property
    def stats(self) -> Stats:
        stats: Stats = self.app.state.stats
        return stats


class ScriptedProcess(ProcessServer):
    """`agentrun serve-scripted` in a child process on 127.0.0.1 at a free port; a context manager."""

    def __init__(
        self,
        dataset_dir: Path,
        *,
        models: tuple[str, ...] = ("scripted",),
        latency_ms: float = 0.0,
        min_turns: int | None = None,
        policy: str = "oracle",
        error_rate: float = 0.2,
        log_level: str = "warning",
    ) -> None:
        super().__init__(python_module("agentrun.cli.scripted", [
            "--dataset", str(dataset_dir), "--latency-ms", str(latency_ms), "--log-level", log_level,
            "--policy", policy, "--error-rate", str(error_rate),
            *(option for model in models for option in ("--model", model)),
            *(("--min-turns", str(min_turns)) if min_turns is not None else ()),
        ]), env=agentrun_env())  # fmt: skip
