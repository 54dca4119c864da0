"""From a model id to a ready app: load the weights and tokenizer, size the cache, wire the parts.

The served name is the `--model` argument exactly as given (`builtin:tiny`, a directory, a hub id), as
`vllm serve` names its base model, so adapters must carry it in `base_model_name_or_path`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from fastapi import FastAPI
from transformers import PreTrainedModel

from agentrun import storage
from agentrun.models import loading
from agentrun.serving import app, completions, metrics, prefixes
from agentrun.serving.adapters import Adapters
from agentrun.serving.engine import Engine
from agentrun.serving.kvcache import SlotCache

def _eos_ids(model: PreTrainedModel, tokenizer_eos: int | None) -> frozenset[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return frozenset(int(i) for i in [*ids, tokenizer_eos] if i is not None)


def create_app(model: str, *, adapters_dir: Path | None, max_batch: int, max_loras: int,
               prefix_cache_mb: int = 512, cache_root: Path = storage.DEFAULT_LOCAL_ROOT) -> FastAPI:  # fmt: skip
    """Load `model` (float32 on CPU; a builtin is built on first use) and return the server's app; the
    engine starts and stops with the app."""
    root = str(loading.resolve_model(model, cache_root))
    tokenizer = loading.load_tokenizer(root)
    network = loading.load_model(root, dtype=torch.float32).eval()
    config = network.config
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    if any(kind != "full_attention" for kind in layer_types):
        raise ValueError(f"{model}: sliding-window attention layers are not supported by the embedded server")
    served_metrics = metrics.ServerMetrics(model)
    cache = SlotCache(
        layers=config.num_hidden_layers,
        slots=max_batch,
        kv_heads=config.num_key_value_heads,
        head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        dtype=network.dtype,
    )
    eos_ids = _eos_ids(network, tokenizer.eos_token_id)
    engine = Engine(
        Adapters(network, model, max_loras),
        cache,
        prefixes.PrefixStore(prefix_cache_mb * 2**20),
        layer_types=layer_types,
        eos_ids=eos_ids,
        decode=tokenizer.decode,
        max_batch=max_batch,
        metrics=served_metrics,
    )
    generation = network.generation_config
    served = app.ServedModel(
        name=model,
        root=root,
        tokenizer=tokenizer,
        max_model_len=config.max_position_embeddings,
        eos_ids=eos_ids,
        defaults=completions.Defaults(temperature=generation.temperature or 1.0, top_p=generation.top_p or 1.0),
        adapters_dir=adapters_dir,
    )
    return app.create_app(served, engine, served_metrics)
