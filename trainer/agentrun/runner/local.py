"""`agentrun run FILE`: an AgentTrainingRun on this machine, with the embedded server in place of vLLM,
plain torch in place of DeepSpeed and a directory in place of the PVC (DESIGN §1).

    prepare   the dataset; for builtin:tiny, the tiny model and its SFT bootstrap (cached under models/)
    serve     `agentrun serve` (or real vLLM: `--server vllm`) as a child process, its resolver pointed at
              the run's checkpoints
    evaluate  the starting policy on the validation scenarios (held-out train questions)
    loop      GRPO steps (agentrun.trainer.loop), a validation evaluation every `every_steps`
    finish    the final checkpoint and the starting policy on the test split, side by side

Everything a step produces is written atomically, so Ctrl-C loses at most the step in flight, and the
same command resumes from the newest complete checkpoint. Progress goes to `Reporter`s: the progress
bar and Prometheus gauges here, the operator's status reporter in a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
from prometheus_client import start_http_server
from tqdm import tqdm
from transformers import AutoConfig

from agentrun import background, demonstrations, storage, vllm
from agentrun.environment import judge as judges
from agentrun.evaluator import benchmark, compare, summary
from agentrun.mailbox import build, synthetic
from agentrun.mailbox.maildir import MaildirError
from agentrun.mailbox.records import Scenario
from agentrun.metrics import RunMetrics
from agentrun.models import loading
from agentrun.rollout.adapters import AdapterPublisher
from agentrun.rollout.driver import RolloutDriver
from agentrun.spec.models import TINY, AgentTrainingRun
from agentrun.trainer import sft
from agentrun.trainer.learner import Learner, LearnerSettings
from agentrun.trainer.loop import LoopSettings, Publish, StepRecord, StepReporter, TrainingLoop

VALIDATION = "validation"
SERVER_START_SECONDS = 600  # loading a real base model from disk can take minutes


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


@dataclass(frozen=True)
class Outcome:
    """What the run did, for the final summary."""

    run_dir: Path
    steps: int
    start: summary.EvalSummary  # the starting policy on the final split
    end: summary.EvalSummary  # the last checkpoint on the final split
    best: str | None  # the checkpoint with the best validation reward
    accuracy: compare.Paired  # end - start on the final split, question by question
    reward: compare.Paired
    curve: Path  # the PNG of validation (and final) accuracy and reward per evaluated step
    turned: int | None  # a final-split question the start got wrong and the end right
    seconds: dict[str, float]  # wall time of this invocation's phases (PhaseTimer.PHASES)


class PhaseTimer:
    """Wall seconds per phase of one `agentrun run` invocation, written to runs/<run>/timings.json at the
    end (a resumed run reports what the resuming invocation spent)."""

    PHASES = ("dataset", "bootstrap", "evaluations", "grpo")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.PHASES, 0.0)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({**self.seconds, "total": sum(self.seconds.values())}, indent=2))


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


def model_server(run: AgentTrainingRun, layout: storage.Layout, base: str, kind: str, port: int,
                 vllm_command: str = "vllm") -> background.ProcessServer:
    """The run's model server, not started: `agentrun serve`, or `vllm serve` with the operator's command
    line (agentrun.vllm) in this process's environment without its PYTHONPATH (vLLM has its own)."""
    checkpoints_dir = str(layout.checkpoints_dir(run.metadata.name))
    if kind == "agentrun":
        return background.ProcessServer.module("agentrun.serving.cli", [
            "--model", base, "--adapters-dir", checkpoints_dir, "--cache-root", str(layout.root), "--log-level",
            "warning"], port=port)  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return background.ProcessServer([vllm_executable(vllm_command), *vllm.run_serve_args(run.spec, base, gpus=0)],
                                    port, {**vllm.CPU_ENV, **env, **vllm.resolver_env(checkpoints_dir)})


def vllm_executable(command: str) -> str:
    executable = shutil.which(command)
    if executable is None:
        raise RunError(f"--server vllm: no vllm command at {command!r}; install vLLM, or give --vllm-command "
                       "the path of one (`make vllm` builds its CPU build: $(bash hack/vllm/build.sh --print-dir)/bin/vllm)")
    return executable


class LocalRunner:
    def __init__(self, run: AgentTrainingRun, *, progress: bool = True, metrics_port: int = 0,
                 server_port: int = 0, server: str = "agentrun", vllm_command: str = "vllm") -> None:
        self.run = run
        self.server_port = server_port
        self.server, self.vllm_command = server, vllm_command
        if server == "vllm":
            vllm_executable(vllm_command)  # before any compute
        self.spec = run.spec
        self.name = run.metadata.name
        self.layout = storage.Layout(Path(run.spec.storage.local_dir))
        self.progress = progress
        self.timer = PhaseTimer()
        self.reporters: list[Reporter] = [MetricsReporter(self.name, metrics_port),
                                          StepLog(self.layout.run_dir(self.name) / "steps.jsonl")]

    def execute(self) -> Outcome:
        check_base(self.run, self.layout)
        with self.timer.phase("dataset"):
            dataset_dir = prepare_dataset(self.run, self.layout, self.progress)
        with self.timer.phase("bootstrap"):
            base = prepare_base(self.run, self.layout, dataset_dir, self.progress)
        record_spec(self.run, self.layout)
        checkpoints_dir = self.layout.checkpoints_dir(self.name)
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        server = model_server(self.run, self.layout, base, self.server, self.server_port, self.vllm_command)
        try:  # the server stops however this ends: an exception, Ctrl-C or SIGTERM at any point
            server.start(timeout=SERVER_START_SECONDS)
            publisher = AdapterPublisher(server.base_url)
            try:
                return self._train(server.base_url, dataset_dir, base, publisher)
            finally:
                publisher.close()
        finally:
            server.stop()

    def _train(self, endpoint: str, dataset_dir: Path, base: str, publisher: AdapterPublisher) -> Outcome:
        training, evaluation = self.spec.training, self.spec.evaluation
        loop = build_loop(self.run, self.layout, endpoint, dataset_dir, base, publisher, self.reporters)
        start = loop.resume()
        validation = benchmark.validation_scenarios(dataset_dir, evaluation.limit)

        def due(step: int) -> bool:  # the same evaluations however often the run was stopped and resumed
            return step in (0, training.steps) or bool(evaluation.every_steps and step % evaluation.every_steps == 0)

        if due(start):  # the starting policy, or a due evaluation a stop came before
            self._evaluate(endpoint, dataset_dir, loop.model_name, start, VALIDATION, validation)
        self._protect_best(loop)  # from a resumed run's first step on
        bar = tqdm(total=training.steps, initial=start, desc=f"{self.name} GRPO", unit="step",
                   disable=not self.progress)
        with bar:
            while loop.step < training.steps:
                with self.timer.phase("grpo"):
                    record = loop.run_step()
                bar.update()
                bar.set_postfix(reward=f"{record.reward_mean:.3f}", correct=f"{record.answer_accuracy:.0%}",
                                dropped=f"{record.zero_variance_groups:.0%}")
                if due(loop.step):
                    self._evaluate(endpoint, dataset_dir, loop.model_name, loop.step, VALIDATION, validation)
                    self._protect_best(loop)
        final = benchmark.select_scenarios(dataset_dir, evaluation.final_split, evaluation.limit)
        start_result = self._evaluate(endpoint, dataset_dir, base, 0, evaluation.final_split, final)
        end_result = self._evaluate(endpoint, dataset_dir, loop.model_name, loop.step, evaluation.final_split, final)
        run_dir = self.layout.run_dir(self.name)
        self.timer.write(run_dir / "timings.json")
        compare.plot(compare.load_points(run_dir), run_dir / "learning_curve.png", self.name)
        before = compare.question_rows(self.layout.eval_result(self.name, 0, evaluation.final_split))
        after = compare.question_rows(self.layout.eval_result(self.name, loop.step, evaluation.final_split))
        return Outcome(run_dir, loop.step, start_result, end_result, best_checkpoint(self.layout, self.name),
                       accuracy=compare.paired(compare.correct(before), compare.correct(after)),
                       reward=compare.paired(compare.rewards(before), compare.rewards(after)),
                       curve=run_dir / "learning_curve.png", turned=compare.turned_right(before, after),
                       seconds=dict(self.timer.seconds))

    def _protect_best(self, loop: TrainingLoop) -> None:
        """Pruning spares the checkpoint with the best validation reward so far."""
        best = best_checkpoint(self.layout, self.name)
        loop.protected = {best} if best else set()

    def _evaluate(self, endpoint: str, dataset_dir: Path, model: str, step: int, split: str,
                  scenarios: list[Scenario]) -> summary.EvalSummary:
        with self.timer.phase("evaluations"):
            return evaluate(self.run, self.layout, endpoint, dataset_dir, model, step, split, scenarios, self.reporters)


def build_loop(run: AgentTrainingRun, layout: storage.Layout, endpoint: str, dataset_dir: Path, base: str,
               publish: Publish, reporters: Sequence[StepReporter], engine: Literal["torch", "deepspeed"] = "torch",
               ) -> TrainingLoop:
    """The GRPO loop of `run` against the server at `endpoint`: the base with a fresh LoRA adapter, the
    learner on this machine's device, the rollout driver over the training scenarios."""
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
                            checkpoint_every=training.checkpoint_every)
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


def render_outcome(outcome: Outcome, split: str) -> str:
    """The final summary: the starting policy against the last checkpoint on the held-out split."""
    rows = [("answer accuracy", "answer_accuracy", "{:.1%}"), ("sources accuracy", "sources_accuracy", "{:.1%}"),
            ("mean reward", "mean_reward", "{:.3f}"), ("mean turns", "mean_turns", "{:.2f}")]
    lines = [f"{split} split, {outcome.end.questions} questions: starting policy -> step {outcome.steps}"]
    for label, key, fmt in rows:
        before, after = getattr(outcome.start, key), getattr(outcome.end, key)
        lines.append(f"  {label:<17} {fmt.format(before):>8} -> {fmt.format(after):>8}")
    accuracy, reward = outcome.accuracy, outcome.reward
    lines.append(f"  paired over the same questions: accuracy {accuracy.mean:+.1%} +/- {accuracy.standard_error:.1%} "
                 f"({accuracy.z:+.1f} standard errors), reward {reward.mean:+.3f} +/- {reward.standard_error:.3f}")
    lines.append(f"best checkpoint by validation reward: {outcome.best or 'none evaluated'}")
    lines.append(f"learning curve: {outcome.curve}")
    if outcome.turned is not None:
        end_file = outcome.run_dir / "evals" / f"{storage.checkpoint_name(outcome.steps)}-{split}.json"
        lines.append(f"question {outcome.turned} was answered wrongly at the start and rightly at step "
                     f"{outcome.steps}: agentrun show {end_file} --scenario {outcome.turned}")
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in outcome.seconds.items() if seconds >= 0.5)
    lines.append(f"wall time of this invocation: {spent or 'none'} (timings.json)")
    lines.append(f"run directory: {outcome.run_dir} (checkpoints/, evals/, run.json)")
    return "\n".join(lines)
