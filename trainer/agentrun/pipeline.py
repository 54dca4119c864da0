"""The pipeline's composition root: the one place that wires a run's spec to its dataset, base model
(builtin:tiny's bootstrap), GRPO learner loop and evaluations, for both runtimes: `agentrun run` on one
machine (agentrun.runner.local) and the operator's Jobs (agentrun.workloads). What only one runtime needs
stays with it: the child model server and the progress bar with `agentrun run`, the status reporter and
the liveness probe with the Jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import torch
from prometheus_client import start_http_server
from tqdm import tqdm
from transformers import AutoConfig

from agentrun import demonstrations, storage
from agentrun.environment import judge as judges
from agentrun.evaluator import benchmark, summary
from agentrun.mailbox import build, synthetic
from agentrun.mailbox.maildir import MaildirError
from agentrun.mailbox.records import Scenario
from agentrun.metrics import RunMetrics
from agentrun.models import loading
from agentrun.rollout.driver import RolloutDriver
from agentrun.spec.models import TINY, AgentTrainingRun
from agentrun.trainer import sft
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.loop import LoopSettings, Publish, StepRecord, StepReporter, TrainingLoop

VALIDATION = "validation"


class RunError(Exception):
    """The run cannot start: a missing path, a spec that changed under an existing run."""


class Reporter(StepReporter, Protocol):
    """The loop's reporter, told of evaluations too."""

    def evaluated(self, split: str, step: int, result: summary.EvalSummary) -> None: ...


class MetricsReporter:
    """Prometheus gauges of the run, served on `port` (0: the gauges are kept but not served)."""

    def __init__(self, run: str, port: int, namespace: str = "local", addr: str = "127.0.0.1") -> None:
        self.metrics = RunMetrics(namespace, run)
        if port:
            start_http_server(port, addr=addr, registry=self.metrics.registry)

    def step_done(self, record: StepRecord) -> None:
        self.metrics.record_step(record.as_metrics(), record.rollout_errors)

    def evaluated(self, split: str, step: int, result: summary.EvalSummary) -> None:
        self.metrics.record_eval(split, step, result.as_dict())  # type: ignore[arg-type]


class StepLog:
    """runs/<run>/steps.jsonl: one line per completed step (rewards, losses, phase timings), each step once
    however often the run was killed and resumed (a resumed step is reported again; a line cut short by a
    kill is dropped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._logged: set[int] | None = None

    def _steps_on_disk(self) -> set[int]:
        if not self.path.is_file():
            return set()
        text = self.path.read_text()
        whole, _, partial = text.rpartition("\n")
        if partial:
            with self.path.open("r+") as handle:
                handle.truncate(len(whole) + 1 if whole else 0)
        return {json.loads(line)["step"] for line in whole.splitlines() if line}

    def step_done(self, record: StepRecord) -> None:
        if self._logged is None:
            self._logged = self._steps_on_disk()
        if record.step in self._logged:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(dataclasses.asdict(record)) + "\n")
        self._logged.add(record.step)

    def evaluated(self, split: str, step: int, result: summary.EvalSummary) -> None:
        """Evaluations have their own files under evals/."""


def prepare_dataset(run: AgentTrainingRun, layout: storage.Layout, progress: bool) -> Path:
    """The run's dataset directory, built unless it holds the dataset the spec describes; a directory of
    that name built from other settings is an error, not silently reused (runs share datasets by name)."""
    spec = run.spec.dataset
    directory = layout.dataset_dir(spec.name)
    difficulty = synthetic.Difficulty(spec.message_id_style, spec.hard_distractors, spec.emails_per_inbox)
    recipe = build.Recipe(spec.source.value, spec.seed, spec.emails, difficulty,  # type: ignore[arg-type]
                          spec.emails_dataset, spec.questions_dataset,
                          Path(spec.maildir_path) if spec.maildir_path else None)
    try:
        build.ensure(directory, recipe, progress)
    except build.DatasetMismatch as error:
        raise RunError(f"dataset {spec.name!r}: {error}") from None
    except MaildirError as error:
        raise RunError(f"dataset.maildirPath {spec.maildir_path!r}: {error}") from None
    return directory


def check_base(run: AgentTrainingRun, layout: storage.Layout) -> None:
    """Fail before any compute on a typo in a path, or an id missing from an offline cache."""
    base = run.spec.model.base
    if base == TINY:
        return
    try:
        AutoConfig.from_pretrained(loading.resolve_model(base, layout.root), revision=run.spec.model.revision)
    except OSError as error:
        raise RunError(f"model.base {base!r} cannot be loaded: {error}") from None


def bootstrap_dir(run: AgentTrainingRun, layout: storage.Layout) -> Path:
    """Where builtin:tiny's bootstrap for `run` is cached: one per tiny model version, bootstrap recipe,
    dataset and validation hold-out (it learns from every train question but the last `evaluation.limit`),
    so that a cache made by another version or recipe, or one that saw validation, is never reused."""
    recipe = json.dumps([loading.BUILTINS["tiny"], dataclasses.asdict(sft.TINY_BOOTSTRAP)], sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return layout.model_dir(f"tiny-sft-{run.spec.dataset.name}-heldout-{run.spec.evaluation.limit}-{key}")


def prepare_base(run: AgentTrainingRun, layout: storage.Layout, dataset_dir: Path, progress: bool) -> str:
    """The base model as the server names it. builtin:tiny is first bootstrapped (curriculum, language
    phase, SFT on the oracle's demonstrations of the questions GRPO draws from) into `bootstrap_dir`, once."""
    base = run.spec.model.base
    if base != TINY:
        return base
    bootstrapped = bootstrap_dir(run, layout)
    if not (bootstrapped / "config.json").is_file():  # complete or absent: saved atomically
        tqdm.write(f"bootstrapping {TINY} on {dataset_dir.name}: once, cached in {bootstrapped}")
        settings = dataclasses.replace(sft.TINY_BOOTSTRAP, progress=progress)
        learned = benchmark.training_scenarios(dataset_dir, run.spec.evaluation.limit)
        shown = demonstrations.oracle_for(dataset_dir, learned, seed=settings.seed)
        sft.fine_tune(TINY, layout.root, shown, settings, bootstrapped, dataset_dir=dataset_dir, scenarios=learned)
    return str(bootstrapped.resolve())


def record_spec(run: AgentTrainingRun, layout: storage.Layout) -> None:
    """Write run.json, or check that an existing run was started with the same spec (a resume)."""
    path = layout.run_json(run.metadata.name)
    current = run.model_dump(mode="json", by_alias=True)
    if path.is_file():
        if json.loads(path.read_text()) != current:
            raise RunError(f"run {run.metadata.name!r} exists in {path.parent} with a different spec: give the "
                           "new run another metadata.name, or delete that directory to start over")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(current, indent=2))
    staging.replace(path)


def best_checkpoint(layout: storage.Layout, run: str) -> str | None:
    """The checkpoint with the highest mean reward among the run's validation evaluations."""
    best: tuple[float, str] | None = None
    for path in sorted((layout.run_dir(run) / "evals").glob(f"step-*-{VALIDATION}.json")):
        result = json.loads(path.read_text())
        if result["model"].startswith("step-") and (best is None or result["summary"]["mean_reward"] > best[0]):
            best = (result["summary"]["mean_reward"], result["model"])
    return best[1] if best else None


# rollout.maxStaleness when the spec leaves it unset and the importance correction is on. On a cluster vLLM
# and the learner have devices of their own; with `agentrun run` they share this machine's CPUs, and 1 still
# measured 1.11x faster GRPO on the quickstart, learning within noise of 0 (docs/BENCHMARKS.md).
DEFAULT_MAX_STALENESS = 1


def max_staleness(run: AgentTrainingRun) -> int:
    """The spec's rollout.maxStaleness; unset: `DEFAULT_MAX_STALENESS`, or 0 without the importance
    correction, which is what makes older samples safe to train on (docs/LEARNER.md)."""
    chosen = run.spec.rollout.max_staleness
    if chosen is not None:
        return chosen
    return DEFAULT_MAX_STALENESS if run.spec.training.importance_correction.enabled else 0


def build_loop(run: AgentTrainingRun, layout: storage.Layout, endpoint: str, dataset_dir: Path, base: str,
               publish: Publish, reporters: Sequence[StepReporter], engine: Literal["torch", "deepspeed"] = "torch",
               staleness: int = 0) -> TrainingLoop:
    """The GRPO loop of `run` against the server at `endpoint`: the base with a fresh LoRA adapter, the
    learner on this machine's device, the rollout driver over the training scenarios, sampling up to
    `staleness` versions behind the learner (`max_staleness`)."""
    spec = run.spec
    training = spec.training
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 on a CPU without native support is emulated and several times slower than float32.
    dtype = getattr(torch, spec.model.dtype) if device == "cuda" and spec.model.dtype != "auto" else torch.float32
    torch.manual_seed(training.seed)  # the adapter's initialisation: a run is reproducible from its spec
    model = sft.add_lora(loading.load_model(base, layout.root, dtype=dtype), rank=training.lora.rank,
                         alpha=training.lora.alpha, dropout=training.lora.dropout,
                         target_modules=training.lora.target_modules)
    tokenizer = loading.load_tokenizer(base, layout.root)
    learner = Learner(model, LearnerSettings.from_spec(training, spec.learner, device, engine),
                      pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    driver = RolloutDriver(
        endpoint, dataset_dir, benchmark.training_scenarios(dataset_dir, spec.evaluation.limit), spec.reward,
        per_step=training.scenarios_per_step, group_size=training.group_size, seed=training.seed,
        rollout=spec.rollout, environment=spec.environment,
    )
    settings = LoopSettings(steps=training.steps, scale_rewards_by_std=training.scale_rewards_by_std,
                            checkpoint_every=training.checkpoint_every, max_staleness=staleness)
    name = run.metadata.name
    return TrainingLoop(learner, base, layout.checkpoints_dir(name), driver, publish, settings, reporters=reporters,
                        trajectories_file=lambda step: layout.trajectories(name, step))


def evaluate(run: AgentTrainingRun, layout: storage.Layout, endpoint: str, dataset_dir: Path, model: str, step: int,
             split: str, scenarios: list[Scenario], reporters: Sequence[Reporter] = ()) -> summary.EvalSummary:
    """Evaluate `model` (served at `endpoint`) and write evals/step-N-<split>.json, unless that file
    exists (a resumed run, a restarted Job): then its summary is returned."""
    path = layout.eval_result(run.metadata.name, step, split)
    if path.is_file():
        return summary.EvalSummary(**json.loads(path.read_text())["summary"])
    spec = run.spec

    async def run_all() -> benchmark.EvalResult:
        judge = judges.make_judge(spec.reward.judge)
        try:
            return await benchmark.evaluate(
                endpoint, model, dataset_dir, judge, scenarios, split=split, temperature=spec.evaluation.temperature,
                rollout=spec.rollout, environment=spec.environment, reward=spec.reward,
            )
        finally:
            if isinstance(judge, judges.LLMJudge):
                await judge.aclose()

    tqdm.write(f"evaluating {model} on {len(scenarios)} {split} questions")
    result = asyncio.run(run_all())
    benchmark.write_result(path, result)
    for reporter in reporters:
        reporter.evaluated(split, step, result.summary)
    return result.summary
