"""`agentrun serve`: the embedded OpenAI-compatible model server (vLLM's contract on transformers + PEFT).

The server's modules (torch, transformers, PEFT) are imported when the command runs, not when the CLI
is assembled, so `agentrun --help` stays fast and installs without the trainer extra can list commands.
"""

from __future__ import annotations

from pathlib import Path

import click

from agentrun import storage


@click.command("serve")
@click.option("--model", required=True, help="Base model: a Hugging Face directory or hub id, or builtin:tiny.")
@click.option(
    "--adapters-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Filesystem resolver root: a request for an unknown model NAME loads DIR/NAME if it is a LoRA adapter "
    "for this base model (vLLM's VLLM_LORA_RESOLVER_CACHE_DIR).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Most sequences generated at once (vLLM's --max-num-seqs).")  # fmt: skip
@click.option("--max-loras", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most LoRA adapters held in memory; the least recently used idle one is evicted.")  # fmt: skip
@click.option("--prefix-cache-mb", type=click.IntRange(min=0), default=512, show_default=True,
              help="Memory for the keys/values of finished sequences that later prompts may start with.")  # fmt: skip
@click.option("--cache-root", type=click.Path(file_okay=False, path_type=Path),
              default=storage.DEFAULT_LOCAL_ROOT, show_default=True,
              help="Storage root whose models/ holds builtin models, built on first use.")  # fmt: skip
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)  # fmt: skip
def serve(
    model: str,
    adapters_dir: Path | None,
    host: str,
    port: int,
    max_batch: int,
    max_loras: int,
    prefix_cache_mb: int,
    cache_root: Path,
    log_level: str,
) -> None:
    """Serve a model over vLLM's OpenAI-compatible API, with LoRA adapters and batched generation."""
    import uvicorn

    from agentrun import background
    from agentrun.serving import build

    app = build.create_app(model, adapters_dir=adapters_dir, max_batch=max_batch, max_loras=max_loras,
                           prefix_cache_mb=prefix_cache_mb, cache_root=cache_root)  # fmt: skip
    uvicorn.Server(background.uvicorn_config(app, host, port, log_level)).run()


if __name__ == "__main__":
    serve()
