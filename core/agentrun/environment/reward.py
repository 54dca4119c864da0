"""The reward of one episode (DESIGN §3): ART·E's semantics, with the number of sources actually set.

With ART·E's weights (the defaults of `spec.reward`) the range is -2..2. Failures are ordered by how early
the agent went wrong (unparseable < unknown tool < bad arguments < wrong answer < no answer), each plus up
to 0.4 of partial credit for useful steps taken; a correct answer earns 1 plus bonuses for citing the
right sources, citing few, and finishing early. A run may choose other weights; `break_even_precision`
says what trade-off between answering and abstaining they teach.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from agentrun.environment.episode import Episode, ToolErrorKind
from agentrun.spec.models import RewardSpec

ARTE = RewardSpec()  # ART·E's weights
PARTIAL_CREDIT = ARTE.partial_credit

# Conservative on purpose: anything else is judged as an answer, so a hedge ("I don't know, maybe X")
# cannot collect the no-answer reward while also trying its luck.
DONT_KNOW_FORMS = frozenset({"i don't know", "i do not know", "i dont know", "don't know", "dont know"})


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    DONT_KNOW = "dont_know"
    OUT_OF_TURNS = "out_of_turns"
    UNPARSEABLE = "unparseable"
    UNKNOWN_TOOL = "unknown_tool"
    BAD_ARGUMENTS = "bad_arguments"


@dataclass(frozen=True)
class Reward:
    """The reward and what it was computed from; `partial` is reported for every outcome but only
    added to `total` when the answer is not correct."""

    total: float
    outcome: Outcome
    found_right_email: bool
    read_right_email: bool
    no_invalid_read: bool
    sources_correct: bool
    partial: float


def is_dont_know(answer: str) -> bool:
    """Whether the answer declines to answer: one of DONT_KNOW_FORMS, ignoring case, curly apostrophes,
    surrounding whitespace and trailing '.' or '!'."""
    text = unicodedata.normalize("NFKC", answer).casefold().replace("\u2019", "'")
    return re.sub(r"\s+", " ", text).strip().rstrip(".!").strip() in DONT_KNOW_FORMS


def score(episode: Episode, answer_correct: bool | None, weights: RewardSpec = ARTE) -> Reward:
    """The reward of a finished episode under `weights`; `answer_correct` is the judge's verdict, None when
    there is no answer to judge (no answer, or "I don't know"). Raises ValueError if the episode is still
    running or a real answer comes without a verdict."""
    if not episode.done:
        raise ValueError("cannot score an episode that is still running")
    found, read, no_invalid, sources = (
        episode.found_right_email,
        episode.read_right_email,
        not episode.read_invalid_id,
        episode.sources_correct,
    )
    partial = weights.partial_credit * (found + read + no_invalid + sources)
    outcome = _outcome(episode, answer_correct)
    if outcome is Outcome.CORRECT:
        total = (weights.correct_answer + weights.correct_sources_bonus * sources
                 + _citation_bonus(episode.sources, weights.few_sources_bonus)
                 + weights.early_finish_bonus * (1 - episode.turns / episode.max_turns))
    elif episode.error is not None:
        total = _error_base(episode.error, weights) + partial
    elif outcome is Outcome.WRONG:
        total = weights.wrong_answer + partial
    else:
        total = weights.no_answer + partial
    return Reward(total, outcome, found, read, no_invalid, sources, partial)


def break_even_precision(weights: RewardSpec = ARTE) -> float:
    """The precision (share of answers that are correct) above which answering earns more on average than
    abstaining: below it GRPO correctly teaches a policy to say "I don't know" or run out of turns.

    A correct answer is taken to cite its one source (correctAnswer + correctSourcesBonus +
    fewSourcesBonus, 1.4 for ART·E) and to earn no early-finish bonus, so this errs high by at most that
    bonus's share; partial credit is left out, as a wrong answer and an abstention after the same searches
    and reads earn nearly the same. Solving p·correct + (1 - p)·wrong = noAnswer for p gives 1 / 2.4 ≈
    0.42 for ART·E's weights, and 0 when a wrong answer costs no more than abstaining.
    """
    correct = weights.correct_answer + weights.correct_sources_bonus + weights.few_sources_bonus
    return max(0.0, (weights.no_answer - weights.wrong_answer) / (correct - weights.wrong_answer))


def _error_base(error: ToolErrorKind, weights: RewardSpec) -> float:
    if error is ToolErrorKind.UNPARSEABLE:
        return weights.unparseable_tool_call
    if error is ToolErrorKind.UNKNOWN_TOOL:
        return weights.unknown_tool
    return weights.bad_arguments


def _outcome(episode: Episode, answer_correct: bool | None) -> Outcome:
    if episode.error is not None:
        return Outcome(episode.error.value)
    if episode.answer is None:
        return Outcome.OUT_OF_TURNS
    if is_dont_know(episode.answer):
        return Outcome.DONT_KNOW
    if answer_correct is None:
        raise ValueError("an answer was given, so score() needs the judge's verdict (answer_correct)")
    return Outcome.CORRECT if answer_correct else Outcome.WRONG


def _citation_bonus(sources: tuple[str, ...], bonus: float) -> float:
    """`bonus` / the number of distinct sources cited (ART·E never set that number; 0 when none cited)."""
    distinct = len(set(sources))
    return bonus / distinct if distinct else 0.0
