"""`agentrun serve-scripted`: the scripted fake of a vLLM server, for demos, benchmarks and debugging."""

from __future__ import annotations

from pathlib import Path

import click

from agentrun.scripted import policies, serving
from agentrun.scripted.server import PolicyName, ServerConfig


@click.command("serve-scripted")
@click.option(
    "--dataset",
    "dataset_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset directory (emails.db + scenarios) whose questions the policy answers.",
)
@click.option("--policy", type=click.Choice([name.value for name in PolicyName]), default="oracle", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--model", "models", multiple=True, default=("scripted",), show_default=True, help="Served name (repeatable).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Modelled generation time.")
@click.option(
    "--error-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.2,
    show_default=True,
    help="noisy policy: probability of a mistake per turn, spread evenly over the kinds of mistake.",
)
@click.option("--min-turns", type=click.IntRange(min=1), default=None, help="Pad plans with searches to this many turns.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="Server log level (uvicorn's).",
)
def serve_scripted(
    dataset_dir: Path,
    policy: str,
    host: str,
    port: int,
    models: tuple[str, ...],
    latency_ms: float,
    error_rate: float,
    min_turns: int | None,
    log_level: str,
) -> None:
    """Serve a scripted policy over vLLM's OpenAI-compatible API (chat completions with tools)."""
    config = ServerConfig(
        dataset_dir=dataset_dir,
        policy=PolicyName(policy),
        models=models,
        latency_ms=latency_ms,
        mistakes=policies.spread(error_rate),
        min_turns=min_turns,
    )
    serving.serve_forever(config, host=host, port=port, log_level=log_level)


if __name__ == "__main__":
    serve_scripted()
