"""The prepare Job: build the dataset and cache the base model on the volume, once per dataset/model;
for builtin:tiny, bootstrap it there and link it at the run's `base` (what vLLM serves).

    python -m agentrun.workloads.prepare      (AGENTRUN_RUN_FILE, AGENTRUN_STORAGE, HF_HUB_CACHE)
"""

from __future__ import annotations

import os
from pathlib import Path

from agentrun import pipeline, storage
from agentrun.spec.models import BUILTIN_PREFIX, AgentTrainingRun
from agentrun.workloads.context import Workload


def cache_base(run: AgentTrainingRun) -> None:
    """Download a hub model into HF_HUB_CACHE (the server and learner pods read it offline); local
    directories and builtin:tiny need nothing here."""
    base = run.spec.model.base
    if base.startswith(BUILTIN_PREFIX) or Path(base).is_dir():
        return
    from huggingface_hub import snapshot_download

    snapshot_download(base, revision=run.spec.model.revision)


def link(path: Path, target: Path) -> None:
    """`path` -> `target` as a relative symlink (the volume is mounted at different paths in different
    pods), replaced atomically: the learner and evaluation pods relink it while the server reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    staging.symlink_to(os.path.relpath(target, path.parent))
    staging.replace(path)


def prepared_base(run: AgentTrainingRun, layout: storage.Layout, dataset_dir: Path) -> str:
    """The base as the run's server serves it (`Layout.served_base`), ready on the volume: a builtin is
    bootstrapped once (`pipeline.prepare_base`) and linked where the server loads it."""
    built = pipeline.prepare_base(run, layout, dataset_dir, progress=False)
    served = layout.served_base(run.metadata.name, run.spec.model.base)
    if served != built:
        link(Path(served), Path(built))
    return served


def main() -> None:
    workload = Workload.from_environment()
    run, layout = workload.run, workload.layout
    cache_base(run)
    pipeline.check_base(run, layout)
    dataset_dir = pipeline.prepare_dataset(run, layout, progress=False)
    base = prepared_base(run, layout, dataset_dir)
    pipeline.record_spec(run, layout)
    # The server starts after this Job with its LoRA resolver on this directory, which must exist by then.
    layout.checkpoints_dir(run.metadata.name).mkdir(parents=True, exist_ok=True)
    print(f"prepared {dataset_dir} and {base}", flush=True)


if __name__ == "__main__":
    main()
