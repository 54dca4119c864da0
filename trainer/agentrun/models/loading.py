"""Where a base model comes from, and loading it: one `from_pretrained` path for every model.

A base is a Hugging Face id (`Qwen/Qwen3-4B`: transformers finds it in its cache or downloads it), a
local directory in the HF layout, or `builtin:tiny`, the offline model this package builds; the last is
built once into the storage layout's `models/` directory and reused from there. Every kind is then
loaded by `AutoModelForCausalLM.from_pretrained`, so the tiny model exercises the code a real run uses.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from agentrun import storage
from agentrun.models import tiny
from agentrun.spec.models import BUILTIN_PREFIX

# builtin name -> directory under <root>/models/; the directory is renamed whenever the shape, the
# tokenizer or the chat template changes, so that a model cached by an older version is not mistaken
# for this one (v2: tools rendered as signatures, before the system message).
BUILTINS = {"tiny": "tiny-qwen3-2m-v2"}


class UnknownBaseModel(ValueError):
    """`builtin:<name>` names no builtin model."""


def resolve_model(base: str, cache_root: Path = storage.DEFAULT_LOCAL_ROOT, *, seed: int = 0) -> Path | str:
    """The directory or hub id `from_pretrained` should load for `base`; builds a builtin on first use."""
    if not base.startswith(BUILTIN_PREFIX):
        return base
    name = base.removeprefix(BUILTIN_PREFIX)
    if name not in BUILTINS:
        raise UnknownBaseModel(f"unknown builtin model {base!r}; the builtins are "
                               + ", ".join(BUILTIN_PREFIX + n for n in BUILTINS))
    directory = storage.Layout(cache_root).model_dir(BUILTINS[name])
    if not (directory / "config.json").is_file():  # complete or absent: the build is atomic
        tiny.build_tiny(directory, seed)
    return directory


def load_tokenizer(base: str, cache_root: Path = storage.DEFAULT_LOCAL_ROOT) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(resolve_model(base, cache_root))


def load_model(
    base: str, cache_root: Path = storage.DEFAULT_LOCAL_ROOT, dtype: torch.dtype = torch.float32
) -> PreTrainedModel:
    return AutoModelForCausalLM.from_pretrained(resolve_model(base, cache_root), dtype=dtype)
