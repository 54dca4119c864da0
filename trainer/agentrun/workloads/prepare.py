"""The prepare Job: build the dataset and cache the base model on the volume, once per dataset/model.

    python -m agentrun.workloads.prepare      (AGENTRUN_RUN_FILE, AGENTRUN_STORAGE, HF_HUB_CACHE)
"""

from __future__ import annotations

from pathlib import Path

from agentrun.runner import local
from agentrun.spec.models import AgentTrainingRun
from agentrun.workloads.context import Workload


def cache_base(run: AgentTrainingRun) -> None:
    """Download a hub model into HF_HUB_CACHE (the server and learner pods read it offline); local
    directories and builtin:tiny need nothing here."""
    base = run.spec.model.base
    if base.startswith(local.TINY.split(":")[0] + ":") or Path(base).is_dir():
        return
    from huggingface_hub import snapshot_download

    snapshot_download(base, revision=run.spec.model.revision)


def main() -> None:
    workload = Workload.from_environment()
    run, layout = workload.run, workload.layout
    cache_base(run)
    local.check_base(run, layout)
    dataset_dir = local.prepare_dataset(run, layout, progress=False)
    local.prepare_base(run, layout, dataset_dir, progress=False)
    local.record_spec(run, layout)
    # The server starts after this Job with its LoRA resolver on this directory, which must exist by then.
    layout.checkpoints_dir(run.metadata.name).mkdir(parents=True, exist_ok=True)
    print(f"prepared {dataset_dir} and {run.spec.model.base}", flush=True)


if __name__ == "__main__":
    main()
