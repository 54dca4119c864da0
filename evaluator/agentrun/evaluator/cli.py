"""`agentrun eval` benchmarks any OpenAI-compatible model on the email task and prints a table; `compare`
puts a run's evaluations side by side; `show` prints episodes as transcripts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import click

from agentrun import background, checkpoint_files
from agentrun.environment import judge as judges
from agentrun.evaluator import benchmark, compare, episodes, summary, transcript
from agentrun.mailbox.records import Scenario
from agentrun.mailbox.schema import MailboxError
from agentrun.rollout import health
from agentrun.rollout.trajectory import Trajectory
from agentrun.spec.models import EnvironmentSpec, JudgeKind, JudgeSpec, RolloutSpec


@click.command("eval")
@click.option("--endpoint", help="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", help="Model name to request: a base model, an adapter (step-000042), ...")
@click.option("--checkpoint", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Instead of --endpoint/--model: a run's checkpoint directory, served for this evaluation by "
                   "`agentrun serve` on the base model its adapter_config.json names.")
@click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
              help="Dataset directory holding emails.db and scenarios.parquet (see `agentrun data build`).")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=250, show_default=True,
              help="Questions to ask: the first N of the split by id.")
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.0, show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Questions in flight at once.")
@click.option("--max-turns", type=click.IntRange(1, 50), default=EnvironmentSpec().max_turns, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(16, 32768), default=EnvironmentSpec().max_new_tokens,
              show_default=True)
@click.option("--timeout", "request_timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds per chat-completions request.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the endpoint's API key (local servers need none).")
@click.option("--judge", "judge_kind", type=click.Choice([k.value for k in JudgeKind]), default="deterministic",
              show_default=True, help="How answers are judged.")
@click.option("--judge-endpoint", help="LLM judge: OpenAI-compatible base URL.")
@click.option("--judge-model", help="LLM judge: model name.")
@click.option("--judge-api-key-env", default=JudgeSpec().api_key_env, show_default=True,
              help="LLM judge: environment variable holding its API key.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the summary and per-question results as JSON.")
@click.option("--wait-for-server", "wait_seconds", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Seconds to wait for the endpoint's /health before starting.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--show", "show_count", type=click.IntRange(min=0), default=0, show_default=True,
              help="After the table, print N episodes as `agentrun show` does: the first questions not answered "
                   "correctly, then correct ones if there are fewer.")
def eval_command(
    endpoint: str | None, model: str | None, checkpoint: Path | None, dataset_dir: Path, split: str, limit: int, temperature: float, concurrency: int,
    max_turns: int, max_new_tokens: int, request_timeout: float, api_key_env: str, judge_kind: str,
    judge_endpoint: str | None, judge_model: str | None, judge_api_key_env: str, out: Path | None,
    wait_seconds: float, no_progress: bool, show_count: int,
) -> None:
    """Benchmark MODEL at ENDPOINT on the email research task.

    Asks each question of the split once (greedy by default), judges the answers and prints answer
    accuracy, sources accuracy, mean reward, mean turns, latency percentiles and outcomes by kind.
    Exits with status 1 if every question failed for infrastructure reasons.
    """
    if checkpoint is not None:
        if endpoint or model:
            raise click.UsageError("--checkpoint starts its own server: leave out --endpoint and --model")
        with checkpoint_server(checkpoint) as (endpoint, model):
            ctx = click.get_current_context()
            ctx.invoke(eval_command, **{**ctx.params, "checkpoint": None, "endpoint": endpoint, "model": model})
        return
    if not (endpoint and model):
        raise click.UsageError("pass --endpoint and --model, or --checkpoint DIR")
    try:
        judge_spec = JudgeSpec(kind=JudgeKind(judge_kind), endpoint=judge_endpoint, model=judge_model,
                               api_key_env=judge_api_key_env)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if wait_seconds:
        try:
            health.wait_healthy(endpoint, wait_seconds)
        except health.ServerNotReady as exc:
            raise click.ClickException(f"{exc} (--wait-for-server)") from None
    rollout = RolloutSpec(concurrency=concurrency, request_timeout_seconds=request_timeout)
    environment = EnvironmentSpec(max_turns=max_turns, max_new_tokens=max_new_tokens)

    async def run() -> benchmark.EvalResult:
        judge = judges.make_judge(judge_spec)
        try:
            scenarios = benchmark.select_scenarios(dataset_dir, split, limit)  # type: ignore[arg-type]
            return await benchmark.evaluate(
                endpoint, model, dataset_dir, judge, scenarios, split=split, temperature=temperature, rollout=rollout, environment=environment,
                api_key=os.environ.get(api_key_env, "EMPTY"), progress=not no_progress,
            )
        finally:
            if isinstance(judge, judges.LLMJudge):
                await judge.aclose()

    try:
        result = asyncio.run(run())
    except (benchmark.EvaluationError, MailboxError, judges.JudgeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.render_table(result.summary, f"{model} on {dataset_dir} ({split}, {result.summary.questions} questions)"))
    if out is not None:
        benchmark.write_result(out, result)
        click.echo(f"results: {out} (episodes: `agentrun show {out}`)")
    if show_count:
        _echo_episodes(episodes.mistakes_first(result.trajectories, show_count), episodes.scenarios(dataset_dir))
    if result.summary.failed == result.summary.questions:
        first = next(t.exception for t in result.trajectories if t.exception)
        raise click.ClickException(f"every question failed; first error: {first}")


@contextlib.contextmanager
def checkpoint_server(checkpoint: Path) -> Iterator[tuple[str, str]]:
    """`agentrun serve` for a checkpoint: its base from adapter_config.json, its parent as the resolver's
    directory; yields (endpoint, model name)."""
    damage = checkpoint_files.problem(checkpoint, resumable=False)
    if damage:
        raise click.ClickException(f"not a usable checkpoint: {damage}")
    base = json.loads((checkpoint / checkpoint_files.ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
    server = background.ProcessServer.module("agentrun.serving.cli", ["--model", base, "--adapters-dir",
                                                              str(checkpoint.resolve().parent), "--log-level", "warning"])
    server.start(timeout=600)
    try:
        yield server.base_url, checkpoint.name
    finally:
        server.stop()


@click.command("compare")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--plot", "plot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw reward and accuracy against step into this PNG.")
def compare_command(run_dir: Path, plot_file: Path | None) -> None:
    """Compare the evaluations of a run's checkpoints (RUN_DIR/evals/*.json), by split and step."""
    points = compare.load_points(run_dir)
    if not points:
        raise click.ClickException(f"no evaluations in {run_dir / 'evals'}")
    click.echo(compare.render_table(points))
    if plot_file is not None:
        compare.plot(points, plot_file, run_dir.name)
        click.echo(f"plot: {plot_file}")


@click.command("show")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--scenario", "scenario_ids", type=int, multiple=True, help="Only this question's episodes (repeatable).")
@click.option("--only", "kinds", type=click.Choice(episodes.KINDS), multiple=True, metavar="KIND",
              help=f"Only episodes of this kind (repeatable): an outcome as the evaluation table counts them "
                   f"({', '.join(episodes.OUTCOMES)}; exception: stopped by an error, no reward), or incorrect: "
                   "every episode not answered correctly.")
@click.option("--limit", type=click.IntRange(min=0), default=5, show_default=True,
              help="Episodes printed per FILE, the first that match; 0 prints them all.")
@click.option("--dataset", "dataset_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Dataset directory for the reference answers; by default the one the run's run.json names or "
                   "the evaluation recorded.")
@click.option("--full", is_flag=True, help="Print long texts (emails, model text, arguments) whole, not their first lines.")
def show_command(files: tuple[Path, ...], scenario_ids: tuple[int, ...], kinds: tuple[str, ...], limit: int,
                 dataset_dir: Path | None, full: bool) -> None:
    """Print episodes as transcripts: the question, each tool call with its result, the final answer beside
    the reference answer, the judgement and the reward's parts.

    Each FILE is a run's trajectories (runs/<run>/trajectories/step-N.jsonl.gz: what the learner sampled
    at step N) or an evaluation's results (runs/<run>/evals/step-N-<split>.json, `agentrun eval --out`),
    whose episodes lie beside it. Several FILEs with --scenario print one question's episodes one after
    the other, e.g. the starting policy's and the last checkpoint's:

    \b
        agentrun show evals/step-000000-test.json evals/step-000030-test.json --scenario 12

    Long texts are cut to their first lines with a marker saying how much was left out (see --full);
    lines fit in 100 columns. Reference emails are marked with `*`.
    """
    limits = transcript.FULL if full else transcript.Limits()
    for path in files:
        try:
            trajectories = episodes.load(path)
            dataset = episodes.find_dataset(path, dataset_dir)
            scenarios = episodes.scenarios(dataset)
        except episodes.EpisodesError as exc:
            raise click.ClickException(str(exc)) from None
        matching = episodes.select(trajectories, scenario_ids, kinds)
        shown = matching[:limit] if limit else matching
        click.echo(f"{path}: {len(shown)} of {len(matching)} matching episodes ({len(trajectories)} in the file)")
        if dataset is None:
            click.echo("  reference answers unavailable: the dataset was not found (pass --dataset DIR)")
        _echo_episodes(shown, scenarios, limits)


def _echo_episodes(trajectories: list[Trajectory], scenarios: dict[int, Scenario],
                  limits: transcript.Limits = transcript.Limits()) -> None:
    for trajectory in trajectories:
        click.echo()
        click.echo(transcript.render(trajectory, scenarios.get(trajectory.scenario_id), limits))
