"""The shared writer: schema and recipients join, filters and de-duplication, the scenarios file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentrun.mailbox import schema, writer
from agentrun.mailbox.records import Email, Scenario

WHEN = datetime(2001, 5, 14, 9, 30)


def _email(message_id: str, **fields: object) -> Email:
    values: dict[str, object] = {
        "message_id": message_id, "subject": f"subject {message_id}", "from_address": "bob@enron.com",
        "to": ("alice@enron.com",), "date": WHEN, "body": f"body of {message_id}",
    }
    return Email.model_validate(values | fields)


def _write(tmp_path: Path, emails: list[Email]) -> tuple[writer.EmailCounts, sqlite3.Connection]:
    counts = writer.write_emails(emails, tmp_path / schema.EMAILS_DB, batch_size=2)
    return counts, schema.open_readonly(tmp_path / schema.EMAILS_DB)


def test_recipients_join_on_emails_id(tmp_path: Path) -> None:
    # The first email is filtered out, so input positions and emails.id differ: only the right key joins.
    emails = [
        _email("<skipped>", body="x" * 6000),
        _email("<a>", to=("alice@enron.com", "zoe@enron.com"), cc=("carol@enron.com",), bcc=("dave@enron.com",)),
        _email("<b>", from_address="alice@enron.com", to=("bob@enron.com",)),
    ]
    _, conn = _write(tmp_path, emails)
    rows = conn.execute(
        "SELECT r.recipient_address, r.recipient_type FROM recipients r JOIN emails e ON r.email_id = e.id "
        "WHERE e.message_id = '<a>' ORDER BY r.rowid"
    ).fetchall()
    assert rows == [("alice@enron.com", "to"), ("zoe@enron.com", "to"), ("carol@enron.com", "cc"), ("dave@enron.com", "bcc")]
    assert conn.execute("SELECT count(*) FROM recipients WHERE email_id NOT IN (SELECT id FROM emails)").fetchone() == (0,)


def test_filters_and_duplicates_are_counted(tmp_path: Path) -> None:
    many = tuple(f"person{i}@enron.com" for i in range(31))
    emails = [
        _email("<keep-long>", body="y" * writer.MAX_BODY_CHARS),
        _email("<keep-many>", to=many[:20], cc=many[20:25], bcc=many[25:30]),
        _email("<too-long>", body="y" * (writer.MAX_BODY_CHARS + 1)),
        _email("<too-many>", to=many),
        _email("<keep-long>", subject="same id, other text"),
        _email("<copy>", subject="subject <keep-many>", body="body of <keep-many>",
               to=many[:20], cc=many[20:25], bcc=many[25:30]),
        _email("<same-text-other-sender>", subject="subject <keep-many>", body="body of <keep-many>",
               from_address="eve@enron.com"),
    ]
    counts, conn = _write(tmp_path, emails)
    assert counts.written == 3
    assert counts.skipped == {
        "body_over_5000_chars": 1, "over_30_recipients": 1, "duplicate_message_id": 1, "duplicate_content": 1,
    }
    ids = {row[0] for row in conn.execute("SELECT message_id FROM emails")}
    assert ids == {"<keep-long>", "<keep-many>", "<same-text-other-sender>"}


def test_dates_are_stored_as_utc_text_and_indexed(tmp_path: Path) -> None:
    pacific = timezone(timedelta(hours=-7))
    emails = [
        _email("<aware>", date=datetime(2001, 5, 14, 20, 0, tzinfo=pacific), subject="Tahoe trip"),
        _email("<naive>", date=datetime(2001, 5, 14, 20, 0), body="skiing in Tahoe"),
    ]
    _, conn = _write(tmp_path, emails)
    dates = dict(conn.execute("SELECT message_id, date FROM emails"))
    assert dates == {"<aware>": "2001-05-15 03:00:00", "<naive>": "2001-05-14 20:00:00"}
    found = conn.execute(
        "SELECT e.message_id FROM emails_fts JOIN emails e ON e.id = emails_fts.rowid WHERE emails_fts MATCH 'tahoe'"
    ).fetchall()
    assert sorted(found) == [("<aware>",), ("<naive>",)]


def _scenario(scenario_id: int, message_ids: tuple[str, ...], split: str = "train") -> Scenario:
    return Scenario.model_validate({
        "id": scenario_id, "question": f"question {scenario_id}?", "answer": "4:30 PM", "message_ids": message_ids,
        "how_realistic": 0.8, "inbox_address": "alice@enron.com", "query_date": datetime(2001, 6, 1, 12), "split": split,
    })


def test_scenarios_citing_missing_emails_are_dropped_and_counted(tmp_path: Path) -> None:
    _write(tmp_path, [_email("<a>"), _email("<b>"), _email("<b-too-long>", body="z" * 5001)])
    scenarios = [
        _scenario(1, ("<a>",)), _scenario(2, ("<a>", "<b>"), "test"),
        _scenario(3, ("<b-too-long>",)), _scenario(4, ("<a>", "<nowhere>")),
    ]
    path = tmp_path / "scenarios.parquet"
    counts = writer.write_scenarios(scenarios, path, tmp_path / schema.EMAILS_DB)
    assert (counts.written, counts.dropped, counts.by_split) == (2, 2, {"train": 1, "test": 1})
    assert writer.load_scenarios(path) == scenarios[:2]
    types = pq.read_schema(path)
    assert types.field("message_ids").type == pa.list_(pa.string())
    assert types.field("query_date").type == pa.timestamp("us")


def test_aware_query_dates_are_written_as_utc(tmp_path: Path) -> None:
    _write(tmp_path, [_email("<a>")])
    aware = _scenario(1, ("<a>",)).model_copy(update={"query_date": datetime(2001, 6, 1, 12, tzinfo=UTC)})
    writer.write_scenarios([aware], tmp_path / "s.parquet", tmp_path / schema.EMAILS_DB)
    assert writer.load_scenarios(tmp_path / "s.parquet")[0].query_date == datetime(2001, 6, 1, 12)


def test_load_scenarios_reads_jsonl_and_refuses_other_files(tmp_path: Path) -> None:
    scenarios = [_scenario(1, ("<a>",)), _scenario(2, ("<b>", "<c>"), "test")]
    path = tmp_path / "scenarios.jsonl"
    path.write_text("\n".join(s.model_dump_json() for s in scenarios) + "\n\n")
    assert writer.load_scenarios(path) == scenarios
    with pytest.raises(ValueError, match="parquet or .jsonl"):
        writer.load_scenarios(tmp_path / "scenarios.csv")
