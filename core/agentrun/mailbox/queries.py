"""Read-side queries over a mailbox: the search and read operations behind the agent's tools.

The model's keywords never reach FTS5 as query syntax: each one becomes a quoted phrase (inner quotes
doubled) and the phrases are ANDed, so quotes, NEAR, `*`, `^`, `-`, AND/OR/NOT, parentheses and colons
are just text. Everything is restricted to one inbox (emails sent from it or received by it, with
recipients joined on `recipients.email_id = emails.id`), and both operations take a `sent_before` bound,
which hides later emails from a read exactly as from a search.

A `Mailbox` is shared by many concurrent rollouts: each thread gets its own read-only connection
(SQLite connections are cheap, and one connection must not run two statements at once).
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentrun.mailbox import schema, writer

SNIPPET_TOKENS = 15  # words of context per snippet, as in ART·E

MMAP_BYTES = 1 << 31  # SQLite clamps this to its compile-time maximum (2 GB by default)

# The inbox is part of the FTS5 query (`search_match`), so FTS5 intersects the inbox's doclist with the
# keywords' and only matches inside the inbox reach SQL: an everyday word in 15% of all emails costs what
# its hits in the inbox cost, plus one walk of its doclist for bm25's idf. CROSS JOIN keeps FTS5 driving
# (the other way round, with `idx_emails_date`, FTS5 would be probed once per email in the date range).
# bm25 weights (1, 1, 0): the participants phrase adds nothing to a score, so keywords are ranked on
# subject and body alone; but bm25's document length is FTS5's token count over all three columns, so
# an email's addresses (about 3.5 tokens against 39 of text on the synthetic corpus) lengthen it, which
# reorders near scores (FTS5 offers no way to leave a column out of that length).
# The snippet is computed in the query, for matches only (one MATCH per top hit afterwards costs more:
# each re-seeks every phrase's doclist). Optional filters are `:x IS NULL OR ...`, so the model's text is
# only ever bound as parameters.
_SEARCH_SQL = f"""
SELECT e.message_id, snippet(emails_fts, -1, '<b>', '</b>', ' ... ', {SNIPPET_TOKENS}),
       bm25(emails_fts, 1.0, 1.0, 0.0) AS score
FROM emails_fts
CROSS JOIN emails e ON e.id = emails_fts.rowid
WHERE emails_fts MATCH :match
  AND (:sent_after IS NULL OR e.date >= :sent_after)
  AND (:sent_before IS NULL OR e.date < :sent_before)
  AND (:from_addr IS NULL OR e.from_address = :from_addr)
  AND (:to_addr IS NULL OR EXISTS (
      SELECT 1 FROM recipients r WHERE r.recipient_address = :to_addr AND r.email_id = e.id))
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
        text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in bindable(keyword))
        if any(ch.isalnum() for ch in text):
            phrases.append('"' + text.replace('"', '""') + '"')
    return " AND ".join(phrases) or None


def search_match(inbox: str, keywords: str) -> str:
    """The full query: the inbox's participants token AND the keyword phrases, each in its own columns
    (so a keyword never matches an address token, and bm25's idf counts only subject and body hits)."""
    token = schema.participant_token(bindable(inbox))
    return f'{{participants}} : "{token}" AND {{subject body}} : ({keywords})'


def bindable(text: str) -> str:
    """The text with lone surrogates (valid in JSON, invalid in UTF-8) replaced, so SQLite can bind it."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _connect(path: Path) -> sqlite3.Connection:
    conn = schema.open_readonly(path)
    # Memory-mapped reads share the OS page cache between all threads' connections instead of copying
    # pages into each one's private cache (p95 ~1.5x lower on 500k emails); safe because the file is
    # read-only and never rewritten while open.
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


class Mailbox:
    """Searches and reads one `emails.db` from any number of threads; the file must not change while open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn()  # fail now, with the schema module's hint, if the database is missing

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
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
            "from_addr": bindable(from_addr.strip()) if from_addr else None,
            "to_addr": bindable(to_addr.strip()) if to_addr else None,
            "sent_after": parse_date(sent_after) if sent_after else None,
            "sent_before": parse_date(sent_before) if sent_before else None,
            "limit": max_results,
        }
        keywords_match = match_expression(keywords)
        if keywords_match is None or not inbox:
            return []
        params["match"] = search_match(inbox, keywords_match)
        rows = self._conn().execute(_SEARCH_SQL, params)
        return [SearchHit(message_id=message_id, snippet=snippet) for message_id, snippet, _ in rows]

    def read(self, message_id: str, inbox: str, sent_before: str | None = None) -> EmailView | None:
        """The email with this id, or None if there is none, it is neither from nor to `inbox`, or it was
        sent on or after `sent_before` (a date as `search` takes it; exclusive, as there)."""
        conn = self._conn()
        row = conn.execute(_EMAIL_SQL, (bindable(message_id),)).fetchone()
        if row is None:
            return None
        email_id, message_id, subject, from_address, date, body = row
        if sent_before is not None and date >= parse_date(sent_before):
            return None
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
