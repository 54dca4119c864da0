"""Build a dataset directory (emails.db + scenarios.parquet) from any source, and summarise one.

Every source ends in the same writer, so datasets differ only in where their emails and questions come
from. Files are written under temporary names and renamed into place at the end: a reader (or a crashed
build) never leaves a half-written `emails.db` under the real name.

A build records its `Recipe` (source, seed, size, difficulty...) in `build.json` beside them, so a
directory is reused only for the recipe it was built from (`ensure`): a run asking for short ids must
not silently train on a mailbox built with Enron ids under the same dataset name.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentrun import storage
from agentrun.mailbox import hf, schema, synthetic, writer
from agentrun.mailbox.maildir import Maildir
from agentrun.mailbox.records import Email, Scenario

Source = Literal["synthetic", "hf", "maildir"]
SOURCES: tuple[Source, ...] = ("synthetic", "hf", "maildir")
RECIPE_FILE = "build.json"


class DatasetMismatch(schema.MailboxError):
    """A dataset directory holds a dataset built from another recipe than the one asked for."""


@dataclass(frozen=True)
class Recipe:
    """What a dataset is built from; two builds from equal recipes hold the same dataset."""

    source: Source
    seed: int = 0
    emails: int | None = None
    difficulty: synthetic.Difficulty = synthetic.Difficulty()
    emails_dataset: str = hf.EMAILS_DATASET
    questions_dataset: str | None = None
    maildir_path: Path | None = None

    def identity(self) -> dict[str, object]:
        """The settings the source reads, as `build.json` records them (a seed means nothing to hf, and
        so on, so what the source ignores is left out)."""
        if self.source == "synthetic":
            emails = synthetic.DEFAULT_EMAILS if self.emails is None else self.emails
            return {"source": self.source, "seed": self.seed, "emails": emails,
                    "messageIdStyle": self.difficulty.message_id_style,
                    "hardDistractors": self.difficulty.hard_distractors,
                    "emailsPerInbox": self.difficulty.emails_per_inbox}
        if self.source == "hf":
            where: dict[str, object] = {"emailsDataset": self.emails_dataset}
        else:
            where = {"maildirPath": str(self.maildir_path.resolve()) if self.maildir_path else None}
        questions = self.questions_dataset or (hf.QUESTIONS_DATASET if self.source == "hf" else None)
        return {"source": self.source, "emails": self.emails, **where, "questionsDataset": questions}


@dataclass(frozen=True)
class BuildReport:
    source: Source
    out: Path
    emails: writer.EmailCounts
    scenarios: writer.ScenarioCounts
    unreadable_files: dict[str, int]  # maildir files that held no usable email, by reason
    seconds: float
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        skipped = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.emails.skipped.items())) or "none"
        splits = ", ".join(f"{split} {n:,}" for split, n in sorted(self.scenarios.by_split.items())) or "none"
        lines = [
            f"built {self.out} from {self.source} in {self.seconds:.1f} s",
            f"emails: {self.emails.written:,} written; skipped: {skipped}",
            f"scenarios: {self.scenarios.written:,} written ({splits}); "
            f"{self.scenarios.dropped:,} dropped (cited emails not in the mailbox)",
        ]
        if self.unreadable_files:
            files = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.unreadable_files.items()))
            lines.append(f"maildir files skipped: {files}")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


@dataclass
class _Loaded:
    """What a source hands the writer."""

    emails: Iterable[Email]
    total: int  # emails the source holds, for the progress bar
    scenarios: list[Scenario]
    notes: list[str] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)  # filled while `emails` is consumed


def build(
    source: Source,
    out: Path,
    *,
    seed: int = 0,
    emails: int | None = None,
    difficulty: synthetic.Difficulty = synthetic.Difficulty(),
    emails_dataset: str = hf.EMAILS_DATASET,
    questions_dataset: str | None = None,
    maildir_path: Path | None = None,
    progress: bool = False,
) -> BuildReport:
    """Write `out/emails.db`, `out/scenarios.parquet` and `out/build.json` from `source`.

    `emails` is the mailbox size for synthetic (default 20,000) and a cap on emails read for hf and
    maildir (default: all). `difficulty` applies to synthetic only. `questions_dataset` defaults to the
    public questions for hf and to none for maildir; synthetic makes its own.
    """
    recipe = Recipe(source, seed, emails, difficulty, emails_dataset, questions_dataset, maildir_path)
    return _write(recipe, out, progress)


def ensure(out: Path, recipe: Recipe, progress: bool = False) -> BuildReport | None:
    """Build `out` from `recipe` unless it already holds that dataset (then None).

    Raises DatasetMismatch if `out` holds a dataset built from another recipe, or one without a record
    (built by an agentrun older than the record) when `recipe` asks for a difficulty other than the
    default, the only one such a build could make.
    """
    if not ((out / schema.EMAILS_DB).is_file() and storage.scenarios_file(out).is_file()):
        return _write(recipe, out, progress)
    recorded, wanted = built_from(out), recipe.identity()
    if recorded is None:
        legacy = dataclasses.replace(recipe, difficulty=synthetic.Difficulty()).identity()
        if legacy != wanted:
            built, asked = _differences(legacy, wanted)
            raise DatasetMismatch(f"{out} has no {RECIPE_FILE}: an older agentrun built it, so with {built}, "
                                  f"but {asked} is asked for: {_REMEDY}")
    elif recorded != wanted:
        built, asked = _differences(recorded, wanted)
        raise DatasetMismatch(f"{out} was built with {built}, but {asked} is asked for: {_REMEDY}")
    return None


def built_from(out: Path) -> dict[str, object] | None:
    """The recipe identity `out/build.json` records, or None when there is none."""
    path = out / RECIPE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


_REMEDY = "name another dataset (dataset.name), or delete the directory to rebuild it"


def _differences(built: dict[str, object], asked: dict[str, object]) -> tuple[str, str]:
    """The settings where two identities differ, as each has them ("seed=0, emails=2000")."""
    keys = [key for key in {**built, **asked} if built.get(key) != asked.get(key)]

    def shown(side: dict[str, object]) -> str:
        return ", ".join(f"{key}={side.get(key)!r}" for key in keys)

    return shown(built), shown(asked)


def _write(recipe: Recipe, out: Path, progress: bool) -> BuildReport:
    started = time.perf_counter()
    source, emails = recipe.source, recipe.emails
    if source == "synthetic":
        loaded = _synthetic(recipe.seed, emails, recipe.difficulty)
    elif source == "hf":
        loaded = _hub(recipe.emails_dataset, recipe.questions_dataset or hf.QUESTIONS_DATASET)
    elif source == "maildir":
        if recipe.maildir_path is None:
            raise schema.MailboxError("a maildir build needs the path of the maildir")
        loaded = _maildir(recipe.maildir_path, recipe.questions_dataset)
    else:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if emails is not None and source != "synthetic":
        loaded.emails = itertools.islice(loaded.emails, emails)
        loaded.total = min(loaded.total, emails)

    out.mkdir(parents=True, exist_ok=True)
    db, scenarios_path, record = out / schema.EMAILS_DB, out / storage.SCENARIOS_PARQUET, out / RECIPE_FILE
    partial_db, partial_scenarios = out / f".{db.name}.partial", out / f".{scenarios_path.name}.partial"
    partial_record = out / f".{record.name}.partial"
    try:
        email_counts = writer.write_emails(loaded.emails, partial_db, total=loaded.total, progress=progress)
        scenario_counts = writer.write_scenarios(loaded.scenarios, partial_scenarios, partial_db)
        partial_record.write_text(json.dumps(recipe.identity(), indent=2) + "\n")
        record.unlink(missing_ok=True)  # first: a build killed between the renames leaves no stale record
        os.replace(partial_db, db)
        os.replace(partial_scenarios, scenarios_path)
        os.replace(partial_record, record)
    finally:
        for partial in (partial_db, partial_scenarios, partial_record):
            partial.unlink(missing_ok=True)
    return BuildReport(
        source, out, email_counts, scenario_counts, dict(loaded.unreadable), time.perf_counter() - started,
        tuple(loaded.notes),
    )


def _synthetic(seed: int, emails: int | None, difficulty: synthetic.Difficulty) -> _Loaded:
    generated = synthetic.generate(seed, synthetic.DEFAULT_EMAILS if emails is None else emails, difficulty=difficulty)
    return _Loaded(generated.emails, len(generated.emails), generated.scenarios)


def _hub(emails_dataset: str, questions_dataset: str) -> _Loaded:
    files = hf.parquet_files(hf.resolve(emails_dataset))
    scenarios = hf.read_scenarios(hf.resolve(questions_dataset))
    return _Loaded(hf.read_emails(files), hf.email_count(files), scenarios)


def _maildir(path: Path, questions_dataset: str | None) -> _Loaded:
    maildir = Maildir(path)
    if questions_dataset is None:
        scenarios = []
        notes = ["the maildir has no questions: scenarios.parquet is empty (pass a questions dataset to add some)"]
    else:
        scenarios, notes = hf.read_scenarios(hf.resolve(questions_dataset)), []
    return _Loaded(maildir, len(maildir), scenarios, notes, maildir.skipped)


@dataclass(frozen=True)
class InboxStats:
    address: str
    split: str
    emails: int  # sent or received by the inbox
    questions: int


@dataclass(frozen=True)
class Stats:
    directory: Path
    emails: int
    recipients: int
    questions: dict[str, int]  # split -> questions
    inboxes: tuple[InboxStats, ...]  # the inboxes that have questions, by split then address


def stats(directory: Path) -> Stats:
    """Counts of a built dataset: totals, questions per split, and emails and questions per questioned inbox."""
    scenarios_path = storage.scenarios_file(directory)
    scenarios = writer.load_scenarios(scenarios_path) if scenarios_path.exists() else []
    per_inbox = Counter((s.split, s.inbox_address) for s in scenarios)
    conn = schema.open_readonly(directory / schema.EMAILS_DB)
    try:
        emails = conn.execute("SELECT count(*) FROM emails").fetchone()[0]
        recipients = conn.execute("SELECT count(*) FROM recipients").fetchone()[0]
        inboxes = tuple(
            InboxStats(address, split, _inbox_size(conn, address), questions)
            for (split, address), questions in sorted(per_inbox.items())
        )
    finally:
        conn.close()
    return Stats(directory, emails, recipients, dict(Counter(s.split for s in scenarios)), inboxes)


def _inbox_size(conn: sqlite3.Connection, address: str) -> int:
    query = (
        "SELECT count(*) FROM (SELECT id FROM emails WHERE from_address = ?1 "
        "UNION SELECT email_id FROM recipients WHERE recipient_address = ?1)"
    )
    return int(conn.execute(query, (address,)).fetchone()[0])


def render(summary: Stats) -> str:
    """A plain-text table of `stats`, for a terminal."""
    splits = ", ".join(f"{split} {n:,}" for split, n in sorted(summary.questions.items())) or "none"
    lines = [
        f"dataset    {summary.directory}",
        f"emails     {summary.emails:,} ({summary.recipients:,} recipient rows)",
        f"questions  {sum(summary.questions.values()):,} ({splits})",
    ]
    if summary.inboxes:
        width = max(len("inbox"), *(len(inbox.address) for inbox in summary.inboxes))
        lines += ["", f"{'split':<6} {'inbox':<{width}} {'emails':>8} {'questions':>9}"]
        lines += [
            f"{inbox.split:<6} {inbox.address:<{width}} {inbox.emails:>8,} {inbox.questions:>9,}"
            for inbox in summary.inboxes
        ]
    return "\n".join(lines)
