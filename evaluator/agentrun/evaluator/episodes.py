"""Which episodes `agentrun show` and `agentrun eval --show` print, where they are read from, and where
their reference answers come from.

Two kinds of file hold episodes: a trajectories file (`runs/<run>/trajectories/step-N.jsonl.gz`, what
the learner sampled at step N) and an evaluation's results (`evals/step-N-<split>.json`, `agentrun eval
--out`), which keep their per-question rows small and name the trajectories file written beside them.
A trajectory does not carry its question's reference answer: that is the dataset's scenario, found
from --dataset, from the run.json of the run the file belongs to, or from the dataset an evaluation
recorded, in that order (a run copied off a cluster's volume keeps its layout, not its absolute paths).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path

from agentrun import storage
from agentrun.environment.reward import Outcome
from agentrun.evaluator.summary import EXCEPTION
from agentrun.mailbox import writer
from agentrun.mailbox.records import Scenario
from agentrun.rollout.trajectory import Trajectory, read_jsonl

INCORRECT = "incorrect"
OUTCOMES = (*(outcome.value for outcome in Outcome), EXCEPTION)  # as the evaluation table counts them
KINDS = (*OUTCOMES, INCORRECT)  # what --only picks: an outcome, or every episode not answered correctly


class EpisodesError(Exception):
    """The file holds no episodes that can be read."""


def load(path: Path) -> list[Trajectory]:
    """The trajectories of a trajectories file, or of the evaluation whose results file `path` is."""
    if is_results(path):
        name = _results(path).get("trajectories")
        if not isinstance(name, str):
            raise EpisodesError(f"{path} names no trajectories file: it was written before evaluations kept "
                                "them; evaluate again to read its episodes")
        path = path.with_name(name)
    try:
        return read_jsonl(path)
    except (OSError, EOFError, ValueError) as error:  # missing, truncated gzip, or not trajectories
        raise EpisodesError(f"{path}: not a readable trajectories file ({error})") from None


def find_dataset(path: Path, dataset_dir: Path | None = None) -> Path | None:
    """The dataset the episodes in `path` were asked from: `dataset_dir` if given, else the one named by
    the run.json of the run `path` lies in (runs/<run>/{trajectories,evals}/), else the one an
    evaluation's results recorded; None when neither of these holds scenarios."""
    if dataset_dir is not None:
        if not storage.scenarios_file(dataset_dir).is_file():
            raise EpisodesError(f"{dataset_dir} holds no scenarios file (scenarios.parquet or scenarios.jsonl)")
        return dataset_dir
    candidates = [_run_dataset(path.resolve().parent.parent)]
    if is_results(path):
        recorded = _results(path).get("dataset")
        candidates.append(Path(recorded) if isinstance(recorded, str) else None)
    return next((c for c in candidates if c is not None and storage.scenarios_file(c).is_file()), None)


def scenarios(dataset_dir: Path | None) -> dict[int, Scenario]:
    """Every scenario of the dataset by id; none without a dataset."""
    if dataset_dir is None:
        return {}
    return {scenario.id: scenario for scenario in writer.load_scenarios(storage.scenarios_file(dataset_dir))}


def is_results(path: Path) -> bool:
    """Whether `path` is an evaluation's results file rather than a trajectories file (.jsonl[.gz])."""
    return not path.name.endswith((".jsonl", ".jsonl.gz"))


def is_kind(trajectory: Trajectory, kind: str) -> bool:
    if kind == INCORRECT:
        return trajectory.answer_correct is not True
    return (trajectory.reward.outcome if trajectory.reward else EXCEPTION) == kind


def select(trajectories: Sequence[Trajectory], scenario_ids: Collection[int] = (),
           kinds: Collection[str] = ()) -> list[Trajectory]:
    """The trajectories of the given scenarios (all if none given) that are of one of `kinds` (any if
    none given), in file order."""
    return [t for t in trajectories
            if (not scenario_ids or t.scenario_id in scenario_ids)
            and (not kinds or any(is_kind(t, kind) for kind in kinds))]


def mistakes_first(trajectories: Sequence[Trajectory], count: int) -> list[Trajectory]:
    """`count` episodes for `agentrun eval --show`: the first ones not answered correctly, in question
    order, because those are what a person reads episodes for; then correct ones if there are fewer."""
    incorrect = select(trajectories, kinds=[INCORRECT])
    correct = [t for t in trajectories if t.answer_correct is True]
    return (incorrect + correct)[:count]


def _results(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EpisodesError(f"{path}: not a readable evaluation results file ({error})") from None
    if not isinstance(data, dict):
        raise EpisodesError(f"{path}: not an evaluation results file")
    return data


def _run_dataset(run_dir: Path) -> Path | None:
    """The dataset directory named by a run's run.json, in the same storage root."""
    try:
        name = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["spec"]["dataset"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return storage.Layout(run_dir.parent.parent).dataset_dir(name) if isinstance(name, str) else None
