"""Progress-aware liveness for the learner pod: its liveness probe asks whether training still makes
progress, not whether the process is alive. A rollout hung on a server that stopped answering, or a
collective stuck on a dead rank, leaves a live process that burns its GPUs; after `stall_seconds`
without a completed step the probe answers 503 and the kubelet replaces the pod, which resumes from the
newest checkpoint. Before the first 503 the learner says why (`on_stall`: an Event on the run).

    GET /healthz   200 "training: last step N s ago"   or   503 "stalled: no step completed for N s ..."
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agentrun.trainer.loop import StepRecord


class Liveness:
    """A step reporter that remembers when training last made progress. It answers from the learner's
    start, but its clock starts with training (`training_started`): waiting for the server (bounded by
    learner.serverTimeoutSeconds) and loading the model are not stalls."""

    def __init__(self, stall_seconds: float, on_stall: Callable[[str], object] = lambda reason: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds, self.on_stall, self.clock = stall_seconds, on_stall, clock
        self.last: float | None = None
        self.waiting_for: str | None = None
        self._told = False
        self._lock = threading.Lock()

    def training_started(self) -> None:
        """Start (or restart, after `waiting`) the stall clock."""
        with self._lock:
            self.last, self.waiting_for = self.clock(), None

    def waiting(self, what: str) -> None:
        """Stop the stall clock while the learner waits on something with a bound of its own (a server that
        is down: replacing the learner would not bring it back); `training_started` starts it again."""
        with self._lock:
            self.waiting_for = what

    def step_done(self, record: StepRecord) -> None:
        with self._lock:
            self.last, self._told = self.clock(), False

    def check(self) -> tuple[bool, str]:
        """(alive, why); the first check that finds a stall calls `on_stall` with the reason, once per stall."""
        with self._lock:
            if self.last is None:
                return True, "starting: waiting for the server or loading the model"
            if self.waiting_for is not None:
                return True, f"waiting for {self.waiting_for}"
            idle = self.clock() - self.last
            if idle <= self.stall_seconds:
                return True, f"training: last progress {idle:.0f} s ago"
            reason = (f"stalled: no step completed for {idle:.0f} s (learner.stallTimeoutSeconds "
                      f"{self.stall_seconds:g}); the pod is replaced and resumes from the newest checkpoint")
            tell, self._told = not self._told, True
        if tell:
            self.on_stall(reason)
        return False, reason

    def serve(self, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
        """`GET /healthz` on `port` in a daemon thread (0: a free port; the server's `server_port` says)."""
        liveness = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != "/healthz":
                    self.send_error(404)
                    return
                alive, why = liveness.check()
                body = why.encode()
                self.send_response(200 if alive else 503)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
                """The kubelet probes every few seconds: no access log."""

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="liveness").start()
        return server
