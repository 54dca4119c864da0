"""Saving a model prints nothing about DeepSpeed: transformers' `save_pretrained` imports DeepSpeed
whenever it is installed, and DeepSpeed announced its CPU fallback on stdout from every such command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("transformers")
pytest.importorskip("deepspeed")

WARNING = "Setting accelerator to CPU"

# The unwrapping `save_pretrained` starts with, which is where DeepSpeed gets imported.
SAVE = """
import sys
if sys.argv[1] == "agentrun":
    import agentrun.models
import torch
from transformers.modeling_utils import unwrap_model
unwrap_model(torch.nn.Linear(1, 1))
import deepspeed
"""


def saving(importer: str) -> str:
    # No CUDA and no DS_ACCELERATOR: DeepSpeed falls back to the CPU, the case that warned.
    env = {name: value for name, value in os.environ.items() if name != "DS_ACCELERATOR"}
    done = subprocess.run([sys.executable, "-c", SAVE, importer], env={**env, "CUDA_VISIBLE_DEVICES": ""},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout + done.stderr


@pytest.mark.slow  # two interpreters that import torch, transformers and DeepSpeed
def test_agentrun_models_silences_the_cpu_fallback_warning() -> None:
    assert WARNING in saving("plain")  # the control: without agentrun.models the warning is printed
    assert WARNING not in saving("agentrun")
