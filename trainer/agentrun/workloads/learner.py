"""The learner Job: GRPO against the run's vLLM Service, DeepSpeed across the Job's pods (torchrun
starts one process per GPU; rank 0 samples, saves, reports). Always resumes from the newest complete
checkpoint, so a restarted pod or an unsuspended run continues where it stopped. It starts beside the
server, so it first waits for the server's /health (vLLM loads the weights for minutes), bounded by
spec.learner.serverTimeoutSeconds.

    torchrun ... -m agentrun.workloads.learner --resume latest [--metrics-port 9400] [--liveness-port 9401]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import torch

from agentrun import pipeline, storage
from agentrun.kube import Kube
from agentrun.kube_status import StatusWriter
from agentrun.rollout import health
from agentrun.trainer.loop import ServerUnreachable, StepRecord, TrainingLoop
from agentrun.workloads import prepare
from agentrun.workloads.context import Workload
from agentrun.workloads.liveness import Liveness


SERVER_POLL_SECONDS = 2.0
MAX_OUTAGES_IN_A_ROW = 3  # a server that answers /health but not requests is not coming back


class StatusReporter:
    """The learner's keys of status.progress: step, reward, latestCheckpoint, and `stalled`, which every
    step clears."""

    def __init__(self, writer: StatusWriter) -> None:
        self.writer = writer

    def step_done(self, record: StepRecord) -> None:
        self.writer.progress(step=record.step, reward=round(record.reward_mean, 4),
                             latestCheckpoint=storage.checkpoint_name(record.step), stalled=None)

    def evaluated(self, split: str, step: int, result: object) -> None:
        """The evaluator's Jobs report evaluations."""


def resolver_publish(name: str, directory: Path) -> None:
    """vLLM's filesystem resolver finds `name` under the run's checkpoints on its first request, on every
    replica; the loop's served-by check on the next step's rollouts proves it did."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume", choices=["latest"], default="latest",
                        help="where to start: the newest complete checkpoint (the only choice)")
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--liveness-port", type=int, default=0,
                        help="serve GET /healthz there: 503 once no step completed for learner.stallTimeoutSeconds")
    args = parser.parse_args()
    workload = Workload.from_environment()
    run, layout = workload.run, workload.layout
    if not workload.server_url:
        raise SystemExit("AGENTRUN_SERVER_URL not set: the learner samples from the run's vLLM Service")
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    writer = StatusWriter(Kube.in_cluster(), workload.namespace, run.metadata.name) \
        if os.environ.get("KUBERNETES_SERVICE_HOST") and rank == 0 else None
    liveness = None
    # The pod's first rank answers the probe (a rank that hangs holds up the others' collectives too), from
    # the start: the kubelet probes a learner that still waits for its server or loads its model.
    if args.liveness_port and run.spec.learner.stall_timeout_seconds and local_rank == 0:
        liveness = Liveness(run.spec.learner.stall_timeout_seconds, on_stall=stalled_teller(writer))
        liveness.serve(args.liveness_port)
    if torch.cuda.is_available():  # before any weights load: each rank on its own GPU, not all on GPU 0
        torch.cuda.set_device(local_rank)
    timeout = run.spec.learner.server_timeout_seconds
    print(f"waiting up to {timeout} s for the server at {health.health_url(workload.server_url)}", flush=True)
    health.wait_healthy(workload.server_url, timeout, poll=SERVER_POLL_SECONDS)
    dataset_dir = layout.dataset_dir(run.spec.dataset.name)
    base = prepare.prepared_base(run, layout, dataset_dir)  # built by the prepare Job
    reporters: list[pipeline.Reporter] = [pipeline.StepLog(layout.run_dir(run.metadata.name) / "steps.jsonl")]
    if writer is not None:
        writer.progress(stalled=None)  # a stall of the pod this one replaces is over
        reporters.append(StatusReporter(writer))
    if args.metrics_port and rank == 0:  # one metrics server per pod: the ranks would share its port
        reporters.append(pipeline.MetricsReporter(run.metadata.name, args.metrics_port, workload.namespace,
                                                  addr="0.0.0.0"))
    engine = "deepspeed" if os.environ.get("AGENTRUN_ENGINE", "deepspeed") == "deepspeed" else "torch"
    loop = pipeline.build_loop(run, layout, workload.server_url, dataset_dir, base, resolver_publish, reporters,
                               engine=engine, staleness=pipeline.max_staleness(run))
    start = loop.resume()
    if rank == 0:
        print(f"resumed from checkpoint step {start}" if start else "starting at step 0", flush=True)
    if liveness is not None:
        liveness.training_started()
        loop.reporters.append(liveness)
    try:
        train(loop, workload.server_url, timeout, liveness)
    finally:
        loop.close()


def train(loop: TrainingLoop, server_url: str, timeout: float, liveness: Liveness | None = None) -> None:
    """The loop's steps to the last. A step the server did not answer at all (its pod restarting) runs again
    once the server is healthy, as long as it comes back within `timeout` (learner.serverTimeoutSeconds)
    and the outages are not one after another: a pod that dies takes a retry of the Job, a server that
    restarts should not. The wait is not a stall: the liveness clock stops meanwhile."""
    outages = 0
    while loop.step < loop.settings.steps:
        try:
            loop.run_step()
            outages = 0
        except ServerUnreachable as outage:
            outages += 1
            if outages > MAX_OUTAGES_IN_A_ROW:
                raise
            print(f"{outage}\nthe server did not answer: waiting up to {timeout:g} s for its /health, then "
                  f"step {loop.step + 1} again", flush=True)
            if liveness is not None:
                liveness.waiting("the server to come back")
            health.wait_healthy(server_url, timeout, poll=SERVER_POLL_SECONDS)
            if liveness is not None:
                liveness.training_started()


def stalled_teller(writer: StatusWriter | None) -> Callable[[str], None]:
    """What the learner does when it finds itself stalled, before its probe fails: it says so in its log, in
    an Event on the run and in status.progress.stalled, which the operator shows as the run's reason."""

    def tell(reason: str) -> None:
        print(f"liveness: {reason}", flush=True)
        if writer is not None:
            writer.event("LearnerStalled", reason)
            writer.progress(stalled=reason)

    return tell


if __name__ == "__main__":
    main()
