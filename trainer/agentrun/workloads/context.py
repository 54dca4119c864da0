"""The environment a workload pod gets from the operator (agentrun.operator.children)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentrun import storage
from agentrun.spec.loading import load_run
from agentrun.spec.models import AgentTrainingRun


@dataclass(frozen=True)
class Workload:
    run: AgentTrainingRun
    layout: storage.Layout
    namespace: str
    server_url: str | None  # the vLLM Service's /v1, for learner and evaluator

    @classmethod
    def from_environment(cls) -> Workload:
        missing = [v for v in ("AGENTRUN_RUN_FILE", "AGENTRUN_STORAGE") if not os.environ.get(v)]
        if missing:
            raise SystemExit(f"{', '.join(missing)} not set: workloads run in pods the agentrun operator creates")
        run = load_run(Path(os.environ["AGENTRUN_RUN_FILE"]))
        return cls(run=run, layout=storage.Layout(Path(os.environ["AGENTRUN_STORAGE"])),
                   namespace=os.environ.get("AGENTRUN_NAMESPACE") or run.metadata.namespace or "default",
                   server_url=os.environ.get("AGENTRUN_SERVER_URL"))
