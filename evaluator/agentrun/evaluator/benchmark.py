"""Run a model over held-out scenarios of a dataset through the rollout client, and record results.

The model is anything behind an OpenAI-compatible endpoint (vLLM, the embedded server, the scripted
oracle, a hosted API); one greedy trajectory per question, questions in a fixed order so that two
evaluations of the same split are paired question by question.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentrun import storage
from agentrun.environment.judge import Judge
from agentrun.evaluator import summary
from agentrun.mailbox import schema, writer
from agentrun.mailbox.queries import Mailbox
from agentrun.mailbox.records import Scenario, Split
from agentrun.rollout.client import RolloutClient
from agentrun.rollout.trajectory import Trajectory, write_jsonl
from agentrun.spec.models import EnvironmentSpec, RewardSpec, RolloutSpec


class EvaluationError(Exception):
    """The evaluation cannot start (no such dataset or split) or produced nothing usable."""


@dataclass(frozen=True)
class EvalResult:
    model: str
    split: str  # train, test, or validation (held-out train scenarios)
    summary: summary.EvalSummary
    trajectories: list[Trajectory]
    dataset: Path  # where the questions came from, for their reference answers

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "split": self.split,
            "dataset": str(self.dataset.resolve()),
            "summary": self.summary.as_dict(),
            "questions": summary.per_question(self.trajectories),
        }


def select_scenarios(dataset_dir: Path, split: Split, limit: int) -> list[Scenario]:
    """The first `limit` scenarios of `split`, ordered by id (a fixed, reproducible subset)."""
    path = storage.scenarios_file(dataset_dir)
    if not path.is_file():
        raise EvaluationError(
            f"no scenarios in {dataset_dir}: build the dataset with "
            f"`agentrun data build --source synthetic --out {dataset_dir}`"
        )
    chosen = sorted((s for s in writer.load_scenarios(path) if s.split == split), key=lambda s: s.id)
    if not chosen:
        raise EvaluationError(f"{path} has no scenarios in split {split!r}")
    return chosen[:limit]


@dataclass(frozen=True)
class TrainSplit:
    training: list[Scenario]  # what a run learns from: its bootstrap's demonstrations and GRPO's draws
    validation: list[Scenario]  # held out: they rank checkpoints during the run


def split_train(dataset_dir: Path, validation_limit: int) -> TrainSplit:
    """The one place that divides a dataset's train scenarios: the last `validation_limit` by id are held
    out for validation, so the test split stays untouched until the final evaluation, and the rest are
    all a run may learn from. Both halves come from this cut, so they cannot drift into each other."""
    train = select_scenarios(dataset_dir, "train", 10**9)
    if len(train) <= validation_limit:
        raise EvaluationError(f"{dataset_dir} has {len(train)} train scenarios; {validation_limit} are held out "
                              "for validation (evaluation.limit): build a larger dataset or lower the limit")
    cut = len(train) - validation_limit
    return TrainSplit(train[:cut], train[cut:])


def validation_scenarios(dataset_dir: Path, limit: int) -> list[Scenario]:
    """The train scenarios held out from everything a run learns from (`split_train`)."""
    return split_train(dataset_dir, limit).validation


def training_scenarios(dataset_dir: Path, validation_limit: int) -> list[Scenario]:
    """The train scenarios a run learns from: every train scenario except the validation ones."""
    return split_train(dataset_dir, validation_limit).training


async def evaluate(
    endpoint: str,
    model: str,
    dataset_dir: Path,
    judge: Judge,
    scenarios: Sequence[Scenario],
    *,
    split: str = "test",
    temperature: float = 0.0,
    rollout: RolloutSpec = RolloutSpec(),
    environment: EnvironmentSpec = EnvironmentSpec(),
    reward: RewardSpec = RewardSpec(),
    api_key: str = "EMPTY",
    progress: bool = False,
) -> EvalResult:
    """One trajectory per scenario (greedy by default), scored with `reward`'s weights; `split` labels the
    result."""
    with Mailbox(dataset_dir / schema.EMAILS_DB) as mailbox:
        async with RolloutClient(endpoint, rollout, environment, mailbox, judge, api_key=api_key,
                                 reward=reward) as client:
            groups = await client.run_groups(scenarios, model, 1, temperature=temperature, progress=progress)
    trajectories = [group[0] for group in groups]
    return EvalResult(model, split, summary.summarize(trajectories), trajectories, dataset_dir)


def write_result(path: Path, result: EvalResult) -> None:
    """Write the results as JSON and, before it, the episodes beside it (same stem, `.jsonl.gz`) for
    `agentrun show`, which the JSON names; written last, the JSON never names a missing file.

    The episodes leave out the token ids and log-probabilities that only a learner needs: about a
    seventh of the size (measured: ~370 bytes an episode, gzipped, on the synthetic mailbox), so the
    per-question rows stay small for readers like `agentrun compare` and the episodes cost little."""
    path.parent.mkdir(parents=True, exist_ok=True)
    episodes = path.with_name(path.stem + ".jsonl.gz")
    write_jsonl(episodes, map(_without_tokens, result.trajectories))
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps({**result.as_dict(), "trajectories": episodes.name}, indent=2, allow_nan=True))
    staging.replace(path)


def _without_tokens(trajectory: Trajectory) -> Trajectory:
    turns = [turn.model_copy(update={"token_ids": None, "logprobs": None, "prompt_token_ids": None})
             for turn in trajectory.turns]
    return trajectory.model_copy(update={"turns": turns})
