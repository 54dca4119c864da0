"""The one bulk writer every data source shares: filter, de-duplicate, load, index; and the scenarios file.

Sources (synthetic, hub parquet, raw maildir) only yield `Email` and `Scenario` records; the filters the
public ART·E data used (no body over 5,000 characters, no email with over 30 recipients, one copy of each
message id and of each (sender, date, subject, body)) live here once, with a count per reason, so every
dataset is cleaned the same way. Rows go in by `executemany` in batches and the full-text index is built
once at the end (`schema.finish`), which is what lets 500,000 emails load in under a minute.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from agentrun.mailbox import schema
from agentrun.mailbox.records import Email, Scenario

MAX_BODY_CHARS = 5000
MAX_RECIPIENTS = 30
BATCH_SIZE = 5000

SCENARIO_SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("question", pa.string()),
    ("answer", pa.string()),
    ("message_ids", pa.list_(pa.string())),
    ("how_realistic", pa.float64()),
    ("inbox_address", pa.string()),
    ("query_date", pa.timestamp("us")),  # UTC, like emails.date
    ("split", pa.string()),
])
_INSERT_EMAIL = (
    "INSERT INTO emails (id, message_id, subject, from_address, date, body, file_name) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_RECIPIENT = "INSERT INTO recipients (email_id, recipient_address, recipient_type) VALUES (?, ?, ?)"


class Skip(StrEnum):
    """Why an email was not written."""

    LONG_BODY = "body_over_5000_chars"
    MANY_RECIPIENTS = "over_30_recipients"
    DUPLICATE_ID = "duplicate_message_id"
    DUPLICATE_CONTENT = "duplicate_content"


@dataclass(frozen=True)
class EmailCounts:
    written: int
    skipped: dict[str, int]  # Skip value -> emails


@dataclass(frozen=True)
class ScenarioCounts:
    written: int
    dropped: int  # cited a message id that is not in the mailbox
    by_split: dict[str, int]


def utc_naive(moment: datetime) -> datetime:
    """Aware times converted to UTC; naive times are taken to be UTC already (the corpus has no zone)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def date_text(moment: datetime) -> str:
    """The stored form of a date: 'YYYY-MM-DD HH:MM:SS' UTC, which sorts and compares as text."""
    return utc_naive(moment).isoformat(sep=" ", timespec="seconds")


class _Filter:
    """Remembers what was written and says why the next email must be skipped, if it must."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.contents: set[bytes] = set()

    def reason(self, email: Email, date: str) -> Skip | None:
        if len(email.body) > MAX_BODY_CHARS:
            return Skip.LONG_BODY
        if len(email.to) + len(email.cc) + len(email.bcc) > MAX_RECIPIENTS:
            return Skip.MANY_RECIPIENTS
        if email.message_id in self.ids:
            return Skip.DUPLICATE_ID
        content = hashlib.blake2b(
            "\0".join((email.from_address, date, email.subject, email.body)).encode("utf-8", "surrogatepass"),
            digest_size=16,
        ).digest()
        if content in self.contents:
            return Skip.DUPLICATE_CONTENT
        self.ids.add(email.message_id)
        self.contents.add(content)
        return None


def write_emails(
    emails: Iterable[Email], db_path: Path, *, total: int | None = None, progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> EmailCounts:
    """Create `db_path` afresh from `emails`, then build its indexes; `total` sizes the progress bar."""
    conn = schema.create(db_path)
    keep, skipped = _Filter(), Counter[str]()
    written = 0
    bar = tqdm(total=total, unit=" emails", desc="writing emails", disable=not progress, mininterval=0.5)
    try:
        for batch in _batches(emails, batch_size):
            rows, recipients = [], []
            for email in batch:
                date = date_text(email.date)
                reason = keep.reason(email, date)
                if reason is not None:
                    skipped[reason.value] += 1
                    continue
                written += 1
                rows.append(
                    (written, email.message_id, email.subject, email.from_address, date, email.body, email.file_name)
                )
                for kind, addresses in (("to", email.to), ("cc", email.cc), ("bcc", email.bcc)):
                    recipients.extend((written, address, kind) for address in addresses)
            conn.executemany(_INSERT_EMAIL, rows)
            conn.executemany(_INSERT_RECIPIENT, recipients)
            bar.update(len(batch))
        bar.set_description(f"indexing {written:,} emails")
        bar.refresh()
        schema.finish(conn)
    finally:
        bar.close()
        conn.close()
    return EmailCounts(written, dict(skipped))


def _batches(emails: Iterable[Email], size: int) -> Iterator[list[Email]]:
    batch: list[Email] = []
    for email in emails:
        batch.append(email)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def existing_ids(db_path: Path, message_ids: Iterable[str]) -> set[str]:
    """The subset of `message_ids` that the mailbox at `db_path` holds."""
    wanted = list(dict.fromkeys(message_ids))
    conn = schema.open_readonly(db_path)
    try:
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT message_id FROM emails WHERE message_id IN ({marks})"
            found.update(row[0] for row in conn.execute(query, chunk))
        return found
    finally:
        conn.close()


def write_scenarios(scenarios: Iterable[Scenario], path: Path, db_path: Path) -> ScenarioCounts:
    """Write the scenarios whose every cited email is in the mailbox to parquet; count the rest as dropped."""
    scenarios = list(scenarios)
    present = existing_ids(db_path, (mid for s in scenarios for mid in s.message_ids))
    kept = [s for s in scenarios if present.issuperset(s.message_ids)]
    columns = {
        "id": [s.id for s in kept],
        "question": [s.question for s in kept],
        "answer": [s.answer for s in kept],
        "message_ids": [list(s.message_ids) for s in kept],
        "how_realistic": [s.how_realistic for s in kept],
        "inbox_address": [s.inbox_address for s in kept],
        "query_date": [utc_naive(s.query_date) for s in kept],
        "split": [s.split for s in kept],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=SCENARIO_SCHEMA), path)
    return ScenarioCounts(len(kept), len(scenarios) - len(kept), dict(Counter(s.split for s in kept)))


def load_scenarios(path: Path) -> list[Scenario]:
    """Read a scenarios file written by `write_scenarios` (.parquet) or one scenario per line (.jsonl)."""
    if path.suffix == ".parquet":
        return [Scenario.model_validate(row) for row in pq.read_table(path).to_pylist()]
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as lines:
            return [Scenario.model_validate_json(line) for line in lines if line.strip()]
    raise ValueError(f"{path}: scenarios must be a .parquet or .jsonl file")
