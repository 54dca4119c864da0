"""`agentrun eval`: benchmark any OpenAI-compatible model on the email task and print a table."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from agentrun.environment import judge as judges
from agentrun.evaluator import benchmark, summary
from agentrun.mailbox.schema import MailboxError
from agentrun.rollout import health
from agentrun.spec.models import EnvironmentSpec, JudgeKind, JudgeSpec, RolloutSpec


@click.command("eval")
@click.option("--endpoint", required=True, help="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", required=True, help="Model name to request: a base model, an adapter (step-000042), ...")
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
def eval_command(
    endpoint: str, model: str, dataset_dir: Path, split: str, limit: int, temperature: float, concurrency: int,
    max_turns: int, max_new_tokens: int, request_timeout: float, api_key_env: str, judge_kind: str,
    judge_endpoint: str | None, judge_model: str | None, judge_api_key_env: str, out: Path | None,
    wait_seconds: float, no_progress: bool,
) -> None:
    """Benchmark MODEL at ENDPOINT on the email research task.

    Asks each question of the split once (greedy by default), judges the answers and prints answer
    accuracy, sources accuracy, mean reward, mean turns, latency percentiles and outcomes by kind.
    Exits with status 1 if every question failed for infrastructure reasons.
    """
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
        click.echo(f"results: {out}")
    if result.summary.failed == result.summary.questions:
        first = next(t.exception for t in result.trajectories if t.exception)
        raise click.ClickException(f"every question failed; first error: {first}")
