"""Deterministic synthetic corporate mailboxes whose questions have answers known by construction.

Offline there is no Enron corpus, yet a model has to learn to search and read. `generate` writes a mailbox
of the public shape (Enron-style addresses, ids, replies, forwards, ~2000-2001 dates) where every question
is about one matter (a deal, meeting, trip...) in one inbox, named by a codename and a counterparty, and
its answer is a short span copied from the matter's latest statement of the fact. The same keywords find
the matter's other emails too: its other facts, the stale value a revision replaced, replies quoting the
fact and an update sent after the question's date, so the right email is often not the first hit.
Train and test questions come from disjoint inboxes. Everything follows from the seed and the difficulty
(`Difficulty`): how ids look, how many hard distractors a question's matter has, how big an inbox is.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentrun.mailbox.filler import PERIOD_DAYS, Filler, moment, new_matter
from agentrun.mailbox.people import Cast, Person, make_cast
from agentrun.mailbox.records import Email, Scenario, Split
from agentrun.mailbox.threads import Composer, Fact, Matter, MessageIds, MessageIdStyle, ThreadWriter, kept

DEFAULT_EMAILS = 20_000
DEFAULT_TEST_QUESTIONS = 300  # enough held-out questions to tell a few points of accuracy apart
TRAIN_QUESTIONS_PER_TEST = 4
EMAILS_PER_INBOX = 500  # sets the default number of inboxes
MIN_INBOXES = 4  # a test inbox and train inboxes, even in a tiny mailbox
MAX_INBOXES = 150  # the corpus has ~150 custodians
TEST_INBOX_SHARE = 0.25
QUESTION_EMAIL_SHARE = 0.5  # question threads never take more than this share of the mailbox
UPDATE_SHARE = 0.35  # questioned facts revised once more after the question's date

Key = tuple[str, str, str]  # (owner address, codename, counterparty): unique per question matter


class SyntheticEmails:
    """A generated mailbox's emails: sized, and re-iterable because the filler regenerates from its seed."""

    def __init__(self, planned: list[Email], filler: Callable[[int], Iterator[Email]], total: int, seed: int) -> None:
        self.planned, self.filler, self.total, self.seed = planned, filler, total, seed

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Email]:
        """Question threads scattered among the filler, so row order says nothing about which is which."""
        rng = random.Random(f"agentrun-synthetic:{self.seed}:order")
        at = set(rng.sample(range(self.total), len(self.planned)))
        planned, filler = iter(self.planned), self.filler(self.total - len(self.planned))
        for position in range(self.total):
            yield next(planned) if position in at else next(filler)


@dataclass(frozen=True)
class Difficulty:
    """What makes a synthetic mailbox's questions hard, chosen per purpose (DESIGN §9): learnable in minutes
    by the tiny model for a quickstart, corpus-like (the defaults) for benchmarks and real models."""

    message_id_style: MessageIdStyle = "enron"
    """`enron`: the corpus's 27-token JavaMail ids; `short`: `<m4821@thyme>`; nothing else changes."""
    hard_distractors: float = 1.0
    """Density, 0..1, of the emails that name a question's keywords but are not its source: the matter's
    introduction, its other facts (and other questions), stale values a revision replaced, and replies or
    forwards quoting the fact. At 1 the source is the first search hit for ~15% of questions; at 0 a
    question's matter is its source alone (plus updates after the question's date, which the
    environment hides) and the source is nearly always the first hit."""
    emails_per_inbox: int = EMAILS_PER_INBOX
    """Mean emails per inbox: the mailbox gets emails / emails_per_inbox inboxes (MIN_INBOXES..MAX_INBOXES)."""


@dataclass(frozen=True)
class Generated:
    emails: SyntheticEmails
    scenarios: list[Scenario]
    search_terms: dict[int, tuple[str, ...]]  # scenario id -> the keywords its question names


def default_inboxes(emails: int, emails_per_inbox: int = EMAILS_PER_INBOX) -> int:
    return max(MIN_INBOXES, min(MAX_INBOXES, emails // emails_per_inbox))


def generate(
    seed: int = 0,
    emails: int = DEFAULT_EMAILS,
    *,
    difficulty: Difficulty = Difficulty(),
    inboxes: int | None = None,
    test_questions: int = DEFAULT_TEST_QUESTIONS,
    train_questions: int | None = None,
) -> Generated:
    """A mailbox of `emails` emails, and questions about it.

    Test questions come from about a quarter of the inboxes, train questions (four times as many by
    default) from the rest. Question threads take at most half of the mailbox, so a small mailbox gets
    fewer questions than asked (and one too small for a single thread gets it anyway, a few emails over);
    fewer hard distractors make threads shorter, so the same mailbox holds more questions. `inboxes`
    overrides the count `difficulty.emails_per_inbox` implies.
    """
    inboxes = inboxes if inboxes is not None else default_inboxes(emails, difficulty.emails_per_inbox)
    if inboxes < 2 or emails < 1:
        raise ValueError(f"a synthetic mailbox needs at least 2 inboxes and 1 email (got {inboxes} and {emails})")
    rng = random.Random(f"agentrun-synthetic:{seed}")
    cast = make_cast(rng, inboxes)
    owners = rng.sample(cast.owners, len(cast.owners))
    test_inboxes = min(inboxes - 1, max(1, round(inboxes * TEST_INBOX_SHARE)))
    split_of: dict[str, Split] = {o.address: "test" if i < test_inboxes else "train" for i, o in enumerate(owners)}
    quotas = _spread(test_questions, owners[:test_inboxes]) | _spread(
        TRAIN_QUESTIONS_PER_TEST * test_questions if train_questions is None else train_questions, owners[test_inboxes:]
    )
    ids = MessageIds.for_mailbox(difficulty.message_id_style, emails)
    composer = Composer(rng, cast, ids=ids)
    planner = _QuestionPlanner(rng, cast, ThreadWriter(composer, difficulty.hard_distractors), split_of)
    planner.plan(quotas, budget=int(emails * QUESTION_EMAIL_SHARE))
    first_filler_id = composer.sequence

    def filler(count: int) -> Iterator[Email]:
        filler_rng = random.Random(f"agentrun-synthetic:{seed}:filler")
        filler_composer = Composer(filler_rng, cast, first_filler_id, ids)
        return Filler(filler_rng, cast, filler_composer, planner.questioned).emails(count)

    stream = SyntheticEmails(planner.emails, filler, max(emails, len(planner.emails)), seed)
    return Generated(stream, planner.scenarios, planner.search_terms)


def _spread(total: int, owners: list[Person]) -> dict[str, int]:
    base, extra = divmod(total, len(owners))
    return {owner.address: base + (i < extra) for i, owner in enumerate(owners)}


class _QuestionPlanner:
    """Writes question matters inbox by inbox (interleaved, so a small budget cuts every inbox evenly)."""

    def __init__(self, rng: random.Random, cast: Cast, writer: ThreadWriter, split_of: dict[str, Split]) -> None:
        self.rng, self.cast, self.writer, self.split_of = rng, cast, writer, split_of
        self.emails: list[Email] = []
        self.scenarios: list[Scenario] = []
        self.search_terms: dict[int, tuple[str, ...]] = {}
        self.questioned: set[Key] = set()

    def plan(self, quotas: dict[str, int], budget: int) -> None:
        rng, owners = self.rng, {o.address: o for o in self.cast.owners}
        turns = [address for address, quota in quotas.items() for _ in range(quota)]
        rng.shuffle(turns)
        need = dict(quotas)
        for address in turns:
            if need[address] == 0 or len(self.emails) >= budget:
                continue
            asked = min(need[address], rng.choice((1, 2, 2)))
            start = moment(rng, PERIOD_DAYS - 60)
            attributes = max(asked, rng.randrange(2, 5))
            # every fact after the first is another email naming the same keywords: a hard distractor
            attributes = 1 + sum(kept(rng, self.writer.distractors) for _ in range(attributes - 1))
            asked = min(asked, attributes)
            matter = new_matter(rng, self.cast, owners[address], self.questioned, start, attributes)
            self.questioned.add((address, matter.slots["codename"], matter.slots["company"]))
            self._ask(matter, asked)
            need[address] -= asked

    def _ask(self, matter: Matter, asked: int) -> None:
        rng = self.rng
        thread, final = self.writer.write(matter)
        latest = max(email.date for email in thread)
        query_day = latest + timedelta(days=rng.randrange(1, 12))
        query_date = query_day.replace(hour=rng.randrange(8, 19), minute=0, second=0)
        for fact in rng.sample(final, asked):
            self._scenario(matter, fact, query_date)
            if rng.random() < UPDATE_SHARE:
                thread.append(self.writer.update(matter, fact, query_date))
        self.emails.extend(thread)

    def _scenario(self, matter: Matter, fact: Fact, query_date: datetime) -> None:
        template, realism = self.rng.choice(fact.attribute.questions)
        question = template.format_map(matter.slots)
        scenario = Scenario(
            id=len(self.scenarios),
            question=question,
            answer=fact.value,
            message_ids=(fact.source.message_id,),
            how_realistic=round(min(1.0, max(0.0, realism + self.rng.uniform(-0.1, 0.1))), 2),
            inbox_address=matter.owner.address,
            query_date=query_date,
            split=self.split_of[matter.owner.address],
        )
        self.scenarios.append(scenario)
        self.search_terms[scenario.id] = tuple(
            matter.slots[key] for key in matter.kind.keys if f"{{{key}}}" in template
        )
