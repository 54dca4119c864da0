"""A tiny real mailbox (SQLite + FTS5, the production schema) around one inbox, and a scenario over it.

alice@enron.com's inbox holds m1..m5; m6 is someone else's mail. The scenario is asked on 2001-05-01,
so m4 (sent in June) must never be found. The answer ("Tahoe") is in m1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from agentrun.mailbox import queries, schema, writer
from agentrun.mailbox.records import Email, Scenario

INBOX = "alice@enron.com"

EMAILS = [
    Email(
        message_id="m1",
        subject="Ski trip to Tahoe",
        from_address="bob@enron.com",
        to=(INBOX, "zoe@enron.com"),
        cc=("carol@enron.com",),
        bcc=("dave@enron.com",),
        date=datetime(2001, 3, 1, 9, 30),
        body="We are going skiing in Tahoe next week. Tahoe has great snow.",
    ),
    Email(
        message_id="m2",
        subject="Budget review",
        from_address=INBOX,
        to=("bob@enron.com",),
        date=datetime(2001, 4, 1),
        body="The budget for the offsite is $1,200. Skiing is not included.",
    ),
    Email(
        message_id="m3",
        subject="Quarterly numbers",
        from_address="carol@enron.com",
        to=(INBOX,),
        date=datetime(2001, 1, 15),
        body="Long report. " * 40 + "Someone mentioned Tahoe once. " + "More numbers. " * 40,
    ),
    Email(
        message_id="m4",
        subject="Tahoe follow-up",
        from_address="bob@enron.com",
        to=(INBOX,),
        date=datetime(2001, 6, 1),
        body="Photos from Tahoe.",
    ),
    Email(
        message_id="m5",
        subject="Lunch",
        from_address="erin@enron.com",
        to=("frank@enron.com",),
        cc=(INBOX,),
        date=datetime(2001, 2, 1),
        body='Lunch at "Tahoe Grill" NEAR the office? 50% off * today ^ only - OR not.',
    ),
    Email(
        message_id="m6",
        subject="Tahoe Tahoe",
        from_address="eve@enron.com",
        to=("frank@enron.com",),
        date=datetime(2001, 2, 2),
        body="Tahoe Tahoe Tahoe: someone else's mail.",
    ),
]


def build_mailbox(path: Path, emails: list[Email]) -> Path:
    """Write `emails` into a fresh mailbox at `path` with the production schema and indexes."""
    conn = schema.create(path)
    for email in emails:
        cursor = conn.execute(
            "INSERT INTO emails (message_id, subject, from_address, date, body) VALUES (?, ?, ?, ?, ?)",
            (email.message_id, email.subject, email.from_address, writer.date_text(email.date), email.body),
        )
        for kind in ("to", "cc", "bcc"):
            conn.executemany(
                "INSERT INTO recipients VALUES (?, ?, ?)",
                [(cursor.lastrowid, address, kind) for address in getattr(email, kind)],
            )
    schema.finish(conn)
    conn.close()
    return path


@pytest.fixture(scope="session")
def mailbox_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mailbox(tmp_path_factory.mktemp("mailbox") / schema.EMAILS_DB, EMAILS)


@pytest.fixture
def mailbox(mailbox_path: Path) -> Iterator[queries.Mailbox]:
    with queries.Mailbox(mailbox_path) as box:
        yield box


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(
        id=7,
        question="Where is the ski trip?",
        answer="Tahoe",
        message_ids=("m1",),
        inbox_address=INBOX,
        query_date=datetime(2001, 5, 1),
        split="train",
    )
