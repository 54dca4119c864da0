"""Read-side queries over a mailbox: the search and read operations behind the agent's tools.

The model's keywords never reach FTS5 as query syntax: each one becomes a quoted phrase (inner quotes
doubled) and the phrases are ANDed, so quotes, NEAR, `*`, `^`, `-`, AND/OR/NOT, parentheses and colons
are just text. Everything is restricted to one inbox (emails sent from it or received by it, with
recipients joined on `recipients.email_id = emails.id`).

A `Mailbox` is shared by many concurrent rollouts: each thread gets its own read-only connection
(SQLite connections are cheap, and one connection must not run two statements at once), which keeps the
email ids of the inboxes it searched recently in temp tables (see `_Reader`).
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentrun.mailbox import schema, writer

SNIPPET_TOKENS = 15  # words of context per snippet, as in ART·E

MMAP_BYTES = 1 << 31  # SQLite clamps this to its compile-time maximum (2 GB by default)
MAX_CACHED_INBOXES = 16  # per thread; a training step searches the same few inboxes over and over

# An inbox's emails (id and date) copied into a per-connection temp table, once: for an inbox with tens
# of thousands of emails, rebuilding that set in every statement cost more than the search itself.
_INBOX_TABLE_SQL = "CREATE TEMP TABLE {table} (id INTEGER PRIMARY KEY, date TEXT NOT NULL)"
_FILL_INBOX_SQL = """
INSERT OR IGNORE INTO {table}
SELECT id, date FROM emails WHERE from_address = :inbox
UNION ALL
SELECT e.id, e.date FROM recipients r JOIN emails e ON e.id = r.email_id WHERE r.recipient_address = :inbox
"""

# FTS5 drives the scan, and CROSS JOIN pins that order: the other way round, FTS5 re-reads the phrase's
# doclist for every email of the inbox (seconds per search on 500k emails). Each match then costs one
# rowid probe into the inbox table, which also holds the date; `emails`, bm25 and the snippet are only
# computed for matches inside the inbox and date range. (Snippets computed afterwards, one MATCH per top
# hit, cost more: each re-seeks every phrase's doclist.) Optional filters are `:x IS NULL OR ...`, so the
# model's text is only ever bound as parameters.
_SEARCH_SQL = f"""
SELECT e.message_id, snippet(emails_fts, -1, '<b>', '</b>', ' ... ', {SNIPPET_TOKENS}), bm25(emails_fts) AS score
FROM emails_fts
CROSS JOIN {{table}} i ON i.id = emails_fts.rowid
CROSS JOIN emails e ON e.id = i.id
WHERE emails_fts MATCH :match
  AND (:sent_after IS NULL OR i.date >= :sent_after)
  AND (:sent_before IS NULL OR i.date < :sent_before)
  AND (:from_addr IS NULL OR e.from_address = :from_addr)
  AND (:to_addr IS NULL OR EXISTS (
      SELECT 1 FROM recipients r WHERE r.recipient_address = :to_addr AND r.email_id = i.id))
ORDER BY score
LIMIT :limit
"""

_EMAIL_SQL = "SELECT id, message_id, subject, from_address, date, body FROM emails WHERE message_id = ?"
_RECIPIENTS_SQL = "SELECT recipient_address, recipient_type FROM recipients WHERE email_id = ? ORDER BY rowid"


class SearchError(ValueError):
    """Search arguments that cannot be interpreted (a malformed date, a non-positive result count)."""


@dataclass(frozen=True)
class SearchHit:
    message_id: str
    snippet: str


@dataclass(frozen=True)
class EmailView:
    """One email as the agent reads it, recipients included."""

    message_id: str
    subject: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    date: str  # 'YYYY-MM-DD HH:MM:SS', UTC, as stored
    body: str


def parse_date(text: str) -> str:
    """Parse 'YYYY-MM-DD' or a full ISO 8601 timestamp into the stored form, or raise SearchError."""
    try:
        return writer.date_text(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError) as error:  # OverflowError: an offset that leaves year 1..9999
        raise SearchError(f"invalid date {text[:40]!r}: use YYYY-MM-DD (or a full ISO 8601 timestamp)") from error


def match_expression(keywords: list[str]) -> str | None:
    """The FTS5 query: each keyword one quoted phrase, ANDed; None when no keyword has a searchable word.

    Keywords without a letter or digit would become empty phrases, which match nothing and would make
    the whole AND match nothing, so they are dropped. NUL ends an FTS5 query string early (an
    unterminated phrase), so control characters become spaces, which the tokenizer ignores anyway.
    """
    phrases = []
    for keyword in keywords:
        text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in _bindable(keyword))
        if any(ch.isalnum() for ch in text):
            phrases.append('"' + text.replace('"', '""') + '"')
    return " AND ".join(phrases) or None


def _bindable(text: str) -> str:
    """The text with lone surrogates (valid in JSON, invalid in UTF-8) replaced, so SQLite can bind it."""
    return text.encode("utf-8", "replace").decode("utf-8")


class _Reader:
    """One thread's read-only connection, with temp tables of the inboxes it searched last (LRU)."""

    def __init__(self, path: Path) -> None:
        self.conn = schema.open_readonly(path)
        # Memory-mapped reads share the OS page cache between all threads' connections instead of copying
        # pages into each one's private cache (p95 ~1.5x lower on 500k emails); safe because the file is
        # read-only and never rewritten while open.
        self.conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self._tables: OrderedDict[str, str] = OrderedDict()
        self._created = 0

    def inbox_table(self, inbox: str) -> str:
        """The name of the temp table holding `inbox`'s email ids and dates, creating it if needed."""
        table = self._tables.get(inbox)
        if table is not None:
            self._tables.move_to_end(inbox)
            return table
        if len(self._tables) >= MAX_CACHED_INBOXES:
            _, evicted = self._tables.popitem(last=False)
            self.conn.execute(f"DROP TABLE {evicted}")
        table = f"temp.inbox_{self._created}"  # our own counter: no input ever reaches an identifier
        self._created += 1
        self.conn.execute(_INBOX_TABLE_SQL.format(table=table))
        self.conn.execute(_FILL_INBOX_SQL.format(table=table), {"inbox": inbox})
        self.conn.commit()  # end the implicit transaction the INSERT opened, releasing the read lock
        self._tables[inbox] = table
        return table


class Mailbox:
    """Searches and reads one `emails.db` from any number of threads; the file must not change while open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._readers: list[_Reader] = []
        self._lock = threading.Lock()
        self._reader()  # fail now, with the schema module's hint, if the database is missing

    def _reader(self) -> _Reader:
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = _Reader(self.path)
            self._local.reader = reader
            with self._lock:
                self._readers.append(reader)
        return reader

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.conn.close()
            self._readers.clear()
        self._local = threading.local()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def search(
        self,
        inbox: str,
        keywords: list[str],
        from_addr: str | None = None,
        to_addr: str | None = None,
        sent_after: str | None = None,
        sent_before: str | None = None,
        max_results: int = 10,
    ) -> list[SearchHit]:
        """Emails of `inbox` containing every keyword (in subject or body), best bm25 first.

        Keywords with no letter or digit are ignored; if none is left the result is empty (not an
        error: the model cannot know the tokenizer). Dates are 'YYYY-MM-DD' or ISO 8601; `sent_after` is
        inclusive, `sent_before` exclusive. Raises SearchError for a malformed date or max_results < 1.
        """
        if max_results < 1:
            raise SearchError(f"max_results must be at least 1, got {max_results}")
        params = {
            "from_addr": _bindable(from_addr.strip()) if from_addr else None,
            "to_addr": _bindable(to_addr.strip()) if to_addr else None,
            "sent_after": parse_date(sent_after) if sent_after else None,
            "sent_before": parse_date(sent_before) if sent_before else None,
            "limit": max_results,
            "match": match_expression(keywords),
        }
        if params["match"] is None:
            return []
        reader = self._reader()
        table = reader.inbox_table(_bindable(inbox))
        rows = reader.conn.execute(_SEARCH_SQL.format(table=table), params)
        return [SearchHit(message_id=message_id, snippet=snippet) for message_id, snippet, _ in rows]

    def read(self, message_id: str, inbox: str) -> EmailView | None:
        """The email with this id, or None if there is none or it is neither from nor to `inbox`."""
        conn = self._reader().conn
        row = conn.execute(_EMAIL_SQL, (_bindable(message_id),)).fetchone()
        if row is None:
            return None
        email_id, message_id, subject, from_address, date, body = row
        recipients = conn.execute(_RECIPIENTS_SQL, (email_id,)).fetchall()
        if inbox != from_address and all(address != inbox for address, _ in recipients):
            return None
        by_type: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
        for address, kind in recipients:
            by_type[kind].append(address)
        return EmailView(
            message_id=message_id,
            subject=subject,
            from_address=from_address,
            to=tuple(by_type["to"]),
            cc=tuple(by_type["cc"]),
            bcc=tuple(by_type["bcc"]),
            date=date,
            body=body,
        )
