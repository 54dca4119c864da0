"""The mailbox database: one SQLite file with an FTS5 index, the contract every data source writes.

Schema (DESIGN §2-3): `emails` holds one row per message, `recipients` one row per (email, address,
to|cc|bcc) joined on `recipients.email_id = emails.id` (the public ART·E code joined on the wrong key and
always got no recipients), and `emails_fts` indexes subject and body, kept in sync by triggers.
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
CREATE VIRTUAL TABLE IF NOT EXISTS emails_fts USING fts5(
    subject, body, content='emails', content_rowid='id', tokenize='unicode61'
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

TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS emails_fts_insert AFTER INSERT ON emails BEGIN
    INSERT INTO emails_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;
CREATE TRIGGER IF NOT EXISTS emails_fts_delete AFTER DELETE ON emails BEGIN
    INSERT INTO emails_fts(emails_fts, rowid, subject, body) VALUES ('delete', old.id, old.subject, old.body);
END;
CREATE TRIGGER IF NOT EXISTS emails_fts_update AFTER UPDATE ON emails BEGIN
    INSERT INTO emails_fts(emails_fts, rowid, subject, body) VALUES ('delete', old.id, old.subject, old.body);
    INSERT INTO emails_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;
"""


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
    """Build the full-text index, secondary indexes and triggers after a bulk load."""
    conn.execute("INSERT INTO emails_fts(emails_fts) VALUES ('rebuild')")
    conn.executescript(INDEXES + TRIGGERS)
    conn.execute("INSERT INTO emails_fts(emails_fts) VALUES ('optimize')")
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing mailbox read-only; many rollouts may share it (one connection per thread)."""
    if not path.is_file():
        raise MailboxError(
            f"no mailbox database at {path}: build one with "
            f"`agentrun data build --source synthetic --out {path.parent}`"
        )
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    missing = {"emails", "recipients", "emails_fts"} - names
    if missing:
        conn.close()
        raise MailboxError(f"{path} is not an agentrun mailbox (missing tables: {', '.join(sorted(missing))})")
    return conn
