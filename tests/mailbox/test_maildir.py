"""The raw Enron maildir: RFC 822 files parsed with the standard library, broken files skipped and counted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentrun.mailbox import build, maildir, schema, writer

MESSAGE = """\
Message-ID: <{n}.1075855378110.JavaMail.evans@thyme>
Date: Mon, 14 May 2001 16:39:00 -0700 (PDT)
From: phillip.allen@enron.com
To: tim.belden@enron.com, john.lavorato@enron.com
Cc: mike.grigsby@enron.com
Bcc: mike.grigsby@enron.com
Subject: {subject}
Mime-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit
X-From: Phillip K Allen
X-To: Tim Belden <Tim Belden/Enron@EnronXGate>, John J Lavorato
X-cc: Mike Grigsby
X-bcc: Mike Grigsby
X-Folder: \\Phillip_Allen_Jan2002_1\\Allen, Phillip K.\\{folder}
X-Origin: Allen-P
X-FileName: pallen (Non-Privileged).pst

{body}
"""


def _write(root: Path, relative: str, content: bytes) -> None:
    path = root / "maildir" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    def message(n: int, folder: str = "inbox", subject: str = "Forecast", body: str = "Here is our forecast.") -> bytes:
        return MESSAGE.format(n=n, subject=subject, folder=folder, body=body).encode("ascii")

    _write(tmp_path, "allen-p/inbox/1.", message(1))
    _write(tmp_path, "allen-p/inbox/2.", message(2, subject="=?iso-8859-1?Q?Caf=E9_meeting?=", body="See you at 3"))
    _write(tmp_path, "allen-p/inbox/3.", message(3, body="Price is 5c higher").replace(b"5c", b"5\xa2"))
    _write(tmp_path, "allen-p/_sent_mail/1.", message(1, folder="'sent mail"))  # duplicate id
    _write(tmp_path, "allen-p/_sent_mail/2.", message(12, folder="'sent mail"))  # same text, other id
    _write(tmp_path, "allen-p/inbox/4.", message(4).replace(b"Mon, 14 May 2001 16:39:00 -0700 (PDT)", b"sometime"))
    _write(tmp_path, "lay-k/inbox/1.", message(5).replace(b"Message-ID: <5.1075855378110.JavaMail.evans@thyme>\n", b""))
    _write(tmp_path, "lay-k/inbox/2.", message(6).replace(b"From: phillip.allen@enron.com\n", b""))
    _write(tmp_path, "lay-k/notes/.DS_Store", b"\x00\x01")  # hidden files are not messages
    return tmp_path


def test_parses_enron_messages(tree: Path) -> None:
    emails = {e.file_name: e for e in maildir.Maildir(tree)}
    first = emails["allen-p/inbox/1."]
    assert first.message_id == "<1.1075855378110.JavaMail.evans@thyme>"
    assert first.from_address == "phillip.allen@enron.com"
    assert first.to == ("tim.belden@enron.com", "john.lavorato@enron.com")
    assert first.cc == first.bcc == ("mike.grigsby@enron.com",)
    assert first.date == datetime.fromisoformat("2001-05-14 16:39:00-07:00")
    assert first.body == "Here is our forecast.\n"
    assert emails["allen-p/inbox/2."].subject == "Café meeting"
    assert "5\ufffd higher" in emails["allen-p/inbox/3."].body  # a stray 8-bit byte in an ascii message


def test_build_counts_skipped_files_and_duplicates(tree: Path, tmp_path: Path) -> None:
    report = build.build("maildir", tmp_path / "out", maildir_path=tree)
    assert report.unreadable_files == {"bad_date": 1, "no_message_id": 1, "no_sender": 1}
    assert report.emails.written == 3
    assert report.emails.skipped == {"duplicate_message_id": 1, "duplicate_content": 1}
    assert report.scenarios.written == 0 and any("no questions" in note for note in report.notes)
    assert writer.load_scenarios(tmp_path / "out" / "scenarios.parquet") == []
    conn = schema.open_readonly(tmp_path / "out" / schema.EMAILS_DB)
    dates = conn.execute("SELECT date FROM emails WHERE message_id LIKE '<1.%'").fetchall()
    assert dates == [("2001-05-14 23:39:00",)]
    recipients = conn.execute(
        "SELECT r.recipient_type, count(*) FROM recipients r JOIN emails e ON r.email_id = e.id GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert recipients == [("bcc", 3), ("cc", 3), ("to", 6)]


def test_questions_can_come_from_a_questions_dataset(tree: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions" / "data"
    questions.mkdir(parents=True)
    row = {
        "id": 1, "question": "Who sent the forecast?", "answer": "Phillip Allen",
        "message_ids": ["<1.1075855378110.JavaMail.evans@thyme>"], "how_realistic": 0.9,
        "inbox_address": "tim.belden@enron.com", "query_date": "2001-06-01",
    }
    pq.write_table(pa.Table.from_pylist([row]), questions / "test-00000-of-00001.parquet")
    report = build.build("maildir", tmp_path / "out", maildir_path=tree, questions_dataset=str(questions.parent))
    assert report.scenarios.by_split == {"test": 1} and not report.notes


def test_missing_or_empty_maildir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(maildir.MaildirError, match="no such directory"):
        build.build("maildir", tmp_path / "out", maildir_path=tmp_path / "nowhere")
    (tmp_path / "empty" / "maildir").mkdir(parents=True)
    with pytest.raises(maildir.MaildirError, match="no message files"):
        maildir.Maildir(tmp_path / "empty")
