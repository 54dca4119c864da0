"""The mailbox database: one SQLite file with an FTS5 index, the contract every data source writes.

Schema (DESIGN §2-3): `emails` holds one row per message, `recipients` one row per (email, address,
to|cc|bcc) joined on `recipients.email_id = emails.id` (the public ART·E code joined on the wrong key and
always got no recipients), and `emails_fts` indexes subject and body, kept in sync by triggers.

`emails_fts` also indexes a third column, `participants`: one token per address that sent or received
the email, so that a search restricted to an inbox is one FTS5 query that intersects the inbox's doclist
with the keywords' instead of walking every email that contains a common word (search p95 on 500k
emails, 2 cores: 25 ms -> 11 ms). The token is the hex of the address's UTF-8 (`participant_token`): one alphanumeric token,
so the match is exact and case-sensitive, like `from_address = ?`, and it is computed in plain SQL, so
the triggers work on any connection. The column is not stored: the index's external content is the view
`emails_fts_content`, which derives it from `emails.from_address` and `recipients`. Queries give the
column bm25 weight 0; its tokens still count in bm25's document length (see `queries`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

EMAILS_DB = "emails.db"

TABLES = """
CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL DEFAULT '',
    from_address TEXT NOT NULL,
    date TEXT NOT NULL,              -- ISO 8601 'YYYY-MM-DD HH:MM:SS', UTC; sorts as text
    body TEXT NOT NULL DEFAULT '',
    file_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS recipients (
    email_id INTEGER NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    recipient_address TEXT NOT NULL,
    recipient_type TEXT NOT NULL CHECK (recipient_type IN ('to', 'cc', 'bcc'))
);
-- '. ' between tokens makes each one a sentence start, which keeps FTS5's snippet() from preferring this
-- column (it adds a bonus to windows that start at a sentence before their first match).
CREATE VIEW IF NOT EXISTS emails_fts_content AS
SELECT e.id, e.subject, e.body, (
    SELECT group_concat(token, '. ') FROM (
        SELECT hex(e.from_address) AS token
        UNION SELECT hex(r.recipient_address) FROM recipients r WHERE r.email_id = e.id
    )
) AS participants
FROM emails e;
CREATE VIRTUAL TABLE IF NOT EXISTS emails_fts USING fts5(
    subject, body, participants, content='emails_fts_content', content_rowid='id', tokenize='unicode61'
);
"""

# Secondary indexes and sync triggers are created after a bulk load: building them once at the end is
# several times faster than maintaining them row by row.
INDEXES = """
CREATE INDEX IF NOT EXISTS idx_emails_from_date ON emails(from_address, date);
CREATE INDEX IF NOT EXISTS idx_emails_date ON emails(date);
CREATE INDEX IF NOT EXISTS idx_recipients_address_email ON recipients(recipient_address, email_id);
CREATE INDEX IF NOT EXISTS idx_recipients_email ON recipients(email_id);
"""

# Any change to an email or to its recipients drops the email's row from the index before the change
# and adds it back after it, both read from `emails_fts_content`: the index then always holds what the
# view says, whichever order emails and their recipients arrive in (FTS5 must be told exactly the
# values it indexed to delete a row).
_UNINDEX = """INSERT INTO emails_fts(emails_fts, rowid, subject, body, participants)
    SELECT 'delete', id, subject, body, participants FROM emails_fts_content WHERE id IN ({ids});"""
_INDEX = """INSERT INTO emails_fts(rowid, subject, body, participants)
    SELECT id, subject, body, participants FROM emails_fts_content WHERE id IN ({ids});"""


def _sync(table: str, event: str, ids: str) -> str:
    name = f"{table}_fts_{event.lower()}"
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name}_before BEFORE {event} ON {table} BEGIN "
        f"{_UNINDEX.format(ids=ids)} END;\n"
        f"CREATE TRIGGER IF NOT EXISTS {name}_after AFTER {event} ON {table} BEGIN {_INDEX.format(ids=ids)} END;\n"
    )


TRIGGERS = "".join((
    _sync("emails", "INSERT", "new.id"),
    _sync("emails", "UPDATE", "old.id, new.id"),
    _sync("emails", "DELETE", "old.id"),
    _sync("recipients", "INSERT", "new.email_id"),
    _sync("recipients", "UPDATE", "old.email_id, new.email_id"),
    _sync("recipients", "DELETE", "old.email_id"),
))


class MailboxError(Exception):
    """A mailbox database is missing or not in agentrun's schema."""


def create(path: Path) -> sqlite3.Connection:
    """Create an empty mailbox at `path` (tables only; call `finish` after loading rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + TABLES)
    return conn


def finish(conn: sqlite3.Connection) -> None:
    """Build the secondary indexes, then the full-text index (its participants read recipients by
    `idx_recipients_email`), then the triggers, after a bulk load."""
    conn.executescript(INDEXES)
    conn.execute("INSERT INTO emails_fts(emails_fts) VALUES ('rebuild')")
    conn.executescript(TRIGGERS)
    conn.execute("INSERT INTO emails_fts(emails_fts) VALUES ('optimize')")
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()


def participant_token(address: str) -> str:
    """The `participants` token of an address, as `emails_fts_content` writes it: SQLite's hex() of the
    UTF-8 text (the address must already be valid UTF-8, as every bound string is)."""
    return address.encode("utf-8").hex().upper()


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing mailbox read-only; many rollouts may share it (one connection per thread)."""
    if not path.is_file():
        raise MailboxError(
            f"no mailbox database at {path}: build one with "
            f"`agentrun data build --source synthetic --out {path.parent}`"
        )
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    missing = {"emails", "recipients", "emails_fts", "emails_fts_content"} - names
    if missing:
        conn.close()
        raise MailboxError(
            f"{path} is not an agentrun mailbox, or one built by an older agentrun "
            f"(missing: {', '.join(sorted(missing))}): rebuild it with `agentrun data build`"
        )
    return conn
