"""How agentrun starts vLLM: one command line and environment for the operator's serving Deployment,
`agentrun run --server vllm` and the tests that hold the embedded server to vLLM's contract.

LoRA on (adapters are the checkpoints), the hermes tool-call parser (the chat templates agentrun trains
render tools that way), and vLLM's filesystem resolver on the run's checkpoints directory, so that a
request for `step-000020` loads that checkpoint on whichever replica receives it.
"""

from __future__ import annotations

from agentrun.spec.models import TINY, TINY_CONTEXT, RunSpec

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts


def max_lora_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds adapters of `rank`."""
    return next(allowed for allowed in LORA_RANKS if allowed >= rank)


def serve_args(model: str, *, dtype: str, max_model_len: int, max_loras: int, lora_rank: int,
               gpu_memory_utilization: float | None = None) -> list[str]:
    """`vllm serve` and its arguments, without the port; `gpu_memory_utilization` None: vLLM's CPU build."""
    return [
        "serve", model,
        "--dtype", dtype,
        "--max-model-len", str(max_model_len),
        *(["--gpu-memory-utilization", str(gpu_memory_utilization)] if gpu_memory_utilization
          else cpu_scheduling_args(max_model_len)),
        "--enable-lora",
        "--max-loras", str(max_loras),
        "--max-lora-rank", str(max_lora_rank(lora_rank)),
        "--enable-auto-tool-choice",
        "--tool-call-parser", "hermes",
    ]  # fmt: skip


def cpu_scheduling_args(max_model_len: int) -> list[str]:
    """Whole prompts only, on vLLM's CPU build. A prompt split over scheduling steps (chunked prefill, on by
    default with a 2,048-token step there) makes vLLM 0.32 rewind the request's sampling generator, which
    CPU generators cannot do: the engine dies (`RuntimeError: CPU Generator does not use offset`) as soon as
    a seeded request, as every rollout is, does not fit a step. docs/SERVER.md; tests/serving."""
    return ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max_model_len)]


def run_serve_args(spec: RunSpec, model: str, *, gpus: int, port: int | None = None) -> list[str]:
    """`serve_args` for a run whose server loads the base as `model`, on `gpus` GPUs (0: the CPU build);
    the spec's `serving.extraArgs` come last, so that they can override any flag before them."""
    # vLLM refuses a max-model-len beyond the model's positions, and the spec's default is a real model's
    max_model_len = min(spec.model.max_model_len, TINY_CONTEXT) if spec.model.base == TINY else spec.model.max_model_len
    return [
        *serve_args(model, dtype=spec.model.dtype, max_model_len=max_model_len, max_loras=spec.serving.max_loras,
                    lora_rank=spec.training.lora.rank,
                    gpu_memory_utilization=spec.serving.gpu_memory_utilization if gpus else None),
        *(["--port", str(port)] if port is not None else []),
        *(["--revision", spec.model.revision] if spec.model.revision else []),
        *(["--tensor-parallel-size", str(gpus)] if gpus > 1 else []),
        *spec.serving.extra_args,
    ]


# vLLM's CPU backend sizes its KV cache from VLLM_CPU_KVCACHE_SPACE (GiB); without it, vLLM 0.32 reserves
# --gpu-memory-utilization (default 0.92) of the whole machine's memory, a node's in a pod, and refuses to
# start when less is free. A default the spec can override (spec.pods.serving.env, or the environment).
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "4"}


def resolver_env(checkpoints_dir: str) -> dict[str, str]:
    """The environment that makes vLLM resolve adapters by name under `checkpoints_dir` (which must exist
    when vLLM starts) and accept runtime loading; the serving image sets the first two as well."""
    return {"VLLM_PLUGINS": "lora_filesystem_resolver", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_LORA_RESOLVER_CACHE_DIR": checkpoints_dir}
