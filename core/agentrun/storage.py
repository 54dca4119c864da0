"""The storage layout (DESIGN §2): the one place that knows where each artefact lives under the root.

The root is the PVC mount on Kubernetes and a local directory in embedded mode; every component builds
its paths through `Layout`, so the layout cannot drift between the operator, learner and evaluator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentrun.mailbox.schema import EMAILS_DB
from agentrun.spec.models import BUILTIN_PREFIX

DEFAULT_LOCAL_ROOT = Path(".agentrun")
SCENARIOS_PARQUET = "scenarios.parquet"
SCENARIOS_JSONL = "scenarios.jsonl"


def checkpoint_name(step: int) -> str:
    """The directory name of a checkpoint, which is also the adapter's served model name."""
    return f"step-{step:06d}"


@dataclass(frozen=True)
class Layout:
    root: Path

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / "datasets" / dataset

    def emails_db(self, dataset: str) -> Path:
        return self.dataset_dir(dataset) / EMAILS_DB

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    def hub_cache(self) -> Path:
        """Hugging Face hub cache (`HF_HUB_CACHE`) for base models pulled by id on a cluster."""
        return self.root / "models" / "hub"

    def run_dir(self, run: str) -> Path:
        return self.root / "runs" / run

    def run_base(self, run: str) -> Path:
        """A cluster run's link to a base model built on the volume (builtin:tiny's bootstrap under
        `models/`): the prepare Job writes it, and the server loads and names the base by this path."""
        return self.run_dir(run) / "base"

    def served_base(self, run: str, base: str) -> str:
        """What a cluster run's server is given as `base`, which is also the model name requests use and
        adapters record: a builtin as `run_base` (its directory is known only once it is built), a hub id
        or directory as written."""
        return str(self.run_base(run)) if base.startswith(BUILTIN_PREFIX) else base

    def run_json(self, run: str) -> Path:
        return self.run_dir(run) / "run.json"

    def checkpoints_dir(self, run: str) -> Path:
        return self.run_dir(run) / "checkpoints"

    def checkpoint_dir(self, run: str, step: int) -> Path:
        return self.checkpoints_dir(run) / checkpoint_name(step)

    def eval_result(self, run: str, step: int, split: str) -> Path:
        return self.run_dir(run) / "evals" / f"{checkpoint_name(step)}-{split}.json"

    def trajectories(self, run: str, step: int) -> Path:
        return self.run_dir(run) / "trajectories" / f"{checkpoint_name(step)}.jsonl.gz"


def scenarios_file(dataset_dir: Path) -> Path:
    """The scenarios file of a dataset directory: parquet when present, else JSONL."""
    parquet = dataset_dir / SCENARIOS_PARQUET
    return parquet if parquet.exists() or not (dataset_dir / SCENARIOS_JSONL).exists() else dataset_dir / SCENARIOS_JSONL


def _readable_and_synced(path: Path) -> None:
    """Every file and directory under `path` readable by other users and on disk.

    Other users: a serving pod may run under another uid than the learner, and safetensors writes its
    files private (0600) whatever the umask."""
    for dirpath, _, filenames in os.walk(path):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o555)
        for name in filenames:
            file = os.path.join(dirpath, name)
            os.chmod(file, os.stat(file).st_mode | 0o444)
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        dir_fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `final` to fill; on success fsync it and rename it into place.

    Readers (the vLLM filesystem resolver, the evaluator) never see a half-written directory: it either
    does not exist yet or is complete. On an exception the temporary directory is removed and `final`
    is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield staging
        _readable_and_synced(staging)
        replaced = None
        if final.exists():  # moved aside first, so that `final` is never a half-deleted directory
            replaced = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.rename(final, replaced / final.name)
        os.rename(staging, final)
        if replaced is not None:
            shutil.rmtree(replaced)
        parent_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(parent_fd)
        finally:
            os.close(parent_fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
