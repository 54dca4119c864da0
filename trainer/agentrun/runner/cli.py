"""`agentrun run FILE`: train an AgentTrainingRun on this machine (see agentrun.runner.local)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from agentrun.spec.loading import SpecError, load_run


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command("run")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Serve the run's Prometheus metrics on 127.0.0.1:PORT (0: do not serve).")
@click.option("--server-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the embedded model server on 127.0.0.1 (0: any free port). Its /metrics has vLLM's "
                   "vllm:* series, for a Prometheus scrape beside --metrics-port.")
@click.option("--server", "server", type=click.Choice(["agentrun", "vllm"]), default="agentrun", show_default=True,
              help="The model server: agentrun's embedded one (1.1x faster on the quickstart on 2 CPU cores), or "
                   "real vLLM with the command line the operator's serving Deployment uses (tests/serving holds "
                   "both to one contract; docs/BENCHMARKS.md times both).")
@click.option("--vllm-command", default="vllm", show_default=True,
              help="--server vllm: the vllm executable, a path or a name on PATH (`make vllm` builds vLLM's CPU "
                   "build; its bin/vllm is under `bash hack/vllm/build.sh --print-dir`).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def run(manifest: Path, metrics_port: int, server_port: int, server: str, vllm_command: str, no_progress: bool) -> None:
    """Train the AgentTrainingRun in MANIFEST locally: the embedded model server (or vLLM) on this machine,
    plain torch instead of DeepSpeed, the spec's storage.localDir instead of a PVC.

    Prepares the dataset (and for builtin:tiny its SFT bootstrap, once), serves the base model, runs
    GRPO steps with a validation evaluation every evaluation.everySteps, and finally compares the last
    checkpoint with the starting policy on the test split. Ctrl-C keeps every complete checkpoint; the
    same command resumes from the newest.
    """
    from agentrun import pipeline
    from agentrun.evaluator import benchmark
    from agentrun.runner import local

    # SIGTERM (a container's stop, a supervisor's kill) ends the run like Ctrl-C: complete checkpoints are
    # kept and the embedded server is stopped instead of outliving this process.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        training_run = load_run(manifest)
    except SpecError as error:
        raise click.ClickException(str(error)) from None
    try:
        outcome = local.LocalRunner(training_run, progress=not no_progress, metrics_port=metrics_port,
                                    server_port=server_port, server=server, vllm_command=vllm_command).execute()
    except (pipeline.RunError, benchmark.EvaluationError) as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: every complete checkpoint is kept; run the same command to "
                                   "resume from the newest") from None
    click.echo(local.render_outcome(outcome, training_run.spec.evaluation.final_split))
