"""Real vLLM for the tests: the CPU build hack/vllm/build.sh makes once (``make vllm``; ``make test`` runs it
first) in a virtual environment of its own, outside the repository. Nothing here builds: a missing
environment is an error that says to run ``make vllm``.

`server` starts ``vllm serve`` with the command line and resolver environment of the operator's
Deployment (`agentrun.vllm`), on this machine's CPU, as a child process with an environment of its own
(agentrun's PYTHONPATH would put this project's newer transformers in front of vLLM's).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from agentrun import background, vllm

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "hack" / "vllm" / "build.sh"
START_SECONDS = 600  # about a minute on 2 idle cores; several while the other tests load them


class VllmMissingError(RuntimeError):
    """The vLLM environment is not built: ``make vllm`` builds it."""


@functools.cache
def env_dir() -> Path:
    """Where build.sh puts (or has put) the environment of the pinned version."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def vllm_bin() -> Path:
    """The environment's ``vllm`` command; raises `VllmMissingError` when the environment is not complete."""
    directory = env_dir()
    if not (directory / ".complete").is_file():
        raise VllmMissingError(f"vLLM is not built ({directory} is not complete): run `make vllm` "
                               f"(= bash {BUILD_SCRIPT.relative_to(REPO)})")
    return directory / "bin" / "vllm"


def server(model: Path, adapters_dir: Path, *, max_loras: int = 2, max_lora_rank: int = 16,
           max_model_len: int = 4096, port: int = 0, env: dict[str, str] | None = None) -> background.ProcessServer:
    """``vllm serve <model>`` on `port` (0: a free one), not started; start it with `START_SECONDS`. `env`
    adds to (or overrides) the environment it gets."""
    command = [
        str(vllm_bin()),
        *vllm.serve_args(str(model), dtype="float32", max_model_len=max_model_len, max_loras=max_loras,
                         lora_rank=max_lora_rank),
        "--host", "127.0.0.1", "--uvicorn-log-level", "warning",
    ]
    environment = {
        "PATH": f"{vllm_bin().parent}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
        "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the tiny model needs little, vLLM's default is 4
        **vllm.resolver_env(str(adapters_dir)),
        **(env or {}),
    }
    return background.ProcessServer(command, port, environment)
