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
bar and Prometheus gauges here, the operator's status reporter in a cluster. The wiring from spec to
dataset, base model, loop and evaluations is agentrun.pipeline's, shared with the operator's Jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from agentrun import background, pipeline, storage, vllm
from agentrun.evaluator import benchmark, compare, summary
from agentrun.mailbox.records import Scenario
from agentrun.rollout.adapters import AdapterPublisher
from agentrun.spec.models import AgentTrainingRun
from agentrun.trainer.loop import TrainingLoop

SERVER_START_SECONDS = 600  # loading a real base model from disk can take minutes


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
        raise pipeline.RunError(f"--server vllm: no vllm command at {command!r}; install vLLM, or give --vllm-command "
                                "the path of one (`make vllm` builds its CPU build: "
                                "$(bash hack/vllm/build.sh --print-dir)/bin/vllm)")
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
        self.staleness = pipeline.max_staleness(run)
        self.reporters: list[pipeline.Reporter] = [
            pipeline.MetricsReporter(self.name, metrics_port),
            pipeline.StepLog(self.layout.run_dir(self.name) / "steps.jsonl")]

    def execute(self) -> Outcome:
        pipeline.check_base(self.run, self.layout)
        with self.timer.phase("dataset"):
            dataset_dir = pipeline.prepare_dataset(self.run, self.layout, self.progress)
        with self.timer.phase("bootstrap"):
            base = pipeline.prepare_base(self.run, self.layout, dataset_dir, self.progress)
        pipeline.record_spec(self.run, self.layout)
        checkpoints_dir = self.layout.checkpoints_dir(self.name)
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        server = model_server(self.run, self.layout, base, self.server, self.server_port, self.vllm_command)
        try:  # the server stops however this ends: an exception, Ctrl-C or SIGTERM at any point
            server.start(timeout=SERVER_START_SECONDS)
            # Rollouts still sampling from the versions before the newest keep theirs loaded.
            publisher = AdapterPublisher(server.base_url, keep=self.staleness + 1)
            try:
                return self._train(server.base_url, dataset_dir, base, publisher)
            finally:
                publisher.close()
        finally:
            server.stop()

    def _train(self, endpoint: str, dataset_dir: Path, base: str, publisher: AdapterPublisher) -> Outcome:
        loop = pipeline.build_loop(self.run, self.layout, endpoint, dataset_dir, base, publisher, self.reporters,
                                   staleness=self.staleness)
        try:
            return self._loop(loop, endpoint, dataset_dir, base)
        finally:
            loop.close()

    def _loop(self, loop: TrainingLoop, endpoint: str, dataset_dir: Path, base: str) -> Outcome:
        training, evaluation = self.spec.training, self.spec.evaluation
        start = loop.resume()
        validation = benchmark.validation_scenarios(dataset_dir, evaluation.limit)

        def due(step: int) -> bool:  # the same evaluations however often the run was stopped and resumed
            return step in (0, training.steps) or bool(evaluation.every_steps and step % evaluation.every_steps == 0)

        if due(start):  # the starting policy, or a due evaluation a stop came before
            self._evaluate(endpoint, dataset_dir, loop.model_name, start, pipeline.VALIDATION, validation)
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
                    self._evaluate(endpoint, dataset_dir, loop.model_name, loop.step, pipeline.VALIDATION, validation)
                    self._protect_best(loop)
        final = benchmark.select_scenarios(dataset_dir, evaluation.final_split, evaluation.limit)
        start_result = self._evaluate(endpoint, dataset_dir, base, 0, evaluation.final_split, final)
        end_result = self._evaluate(endpoint, dataset_dir, loop.model_name, loop.step, evaluation.final_split, final)
        run_dir = self.layout.run_dir(self.name)
        self.timer.write(run_dir / "timings.json")
        compare.plot(compare.load_points(run_dir), run_dir / "learning_curve.png", self.name)
        before = compare.question_rows(self.layout.eval_result(self.name, 0, evaluation.final_split))
        after = compare.question_rows(self.layout.eval_result(self.name, loop.step, evaluation.final_split))
        return Outcome(run_dir, loop.step, start_result, end_result, pipeline.best_checkpoint(self.layout, self.name),
                       accuracy=compare.paired(compare.correct(before), compare.correct(after)),
                       reward=compare.paired(compare.rewards(before), compare.rewards(after)),
                       curve=run_dir / "learning_curve.png", turned=compare.turned_right(before, after),
                       seconds=dict(self.timer.seconds))

    def _protect_best(self, loop: TrainingLoop) -> None:
        """Pruning spares the checkpoint with the best validation reward so far."""
        best = pipeline.best_checkpoint(self.layout, self.name)
        loop.protected = {best} if best else set()

    def _evaluate(self, endpoint: str, dataset_dir: Path, model: str, step: int, split: str,
                  scenarios: list[Scenario]) -> summary.EvalSummary:
        with self.timer.phase("evaluations"):
            return pipeline.evaluate(self.run, self.layout, endpoint, dataset_dir, model, step, split, scenarios,
                                     self.reporters)


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
