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


def _participants(conn: sqlite3.Connection, message_id: str) -> set[str]:
    query = "SELECT c.participants FROM emails_fts_content c JOIN emails e ON e.id = c.id WHERE e.message_id = ?"
    return set(conn.execute(query, (message_id,)).fetchone()[0].split(". "))


def _indexed(conn: sqlite3.Connection, address: str) -> list[str]:
    """Message ids whose participants the full-text index holds `address` for."""
    match = f'{{participants}} : "{schema.participant_token(address)}"'
    query = "SELECT e.message_id FROM emails_fts JOIN emails e ON e.id = emails_fts.rowid WHERE emails_fts MATCH ?"
    return sorted(row[0] for row in conn.execute(query, (match,)))


def _check_index_matches_content(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 1)")


def test_participants_are_the_sender_and_each_recipient_once(tmp_path: Path) -> None:
    addresses = ("alice@enron.com", "Bob@enron.com", "bob@enron.com", "zoë@enron.com")
    emails = [_email("<a>", from_address="bob@enron.com", to=addresses[:2], cc=("bob@enron.com",), bcc=addresses[3:])]
    _, conn = _write(tmp_path, emails)
    assert _participants(conn, "<a>") == {schema.participant_token(address) for address in addresses}
    assert schema.participant_token("zoë@enron.com") == conn.execute("SELECT hex('zoë@enron.com')").fetchone()[0]
    assert all(_indexed(conn, address) == ["<a>"] for address in addresses)
    assert _indexed(conn, "BOB@enron.com") == []
    _check_index_matches_content(sqlite3.connect(tmp_path / schema.EMAILS_DB))


def test_rows_changed_after_the_build_stay_indexed(tmp_path: Path) -> None:
    _write(tmp_path, [_email("<a>")])  # bob -> alice
    conn = sqlite3.connect(tmp_path / schema.EMAILS_DB)
    # An email, then its recipients in later statements, the order a source appending mail would use.
    new_id = conn.execute(
        "INSERT INTO emails (message_id, subject, from_address, date, body) "
        "VALUES ('<b>', 'Tahoe', 'carol@enron.com', '2001-05-15 00:00:00', 'skiing')"
    ).lastrowid
    _check_index_matches_content(conn)
    conn.executemany(
        "INSERT INTO recipients VALUES (?, ?, ?)", [(new_id, "alice@enron.com", "to"), (new_id, "dave@enron.com", "cc")]
    )
    assert (_indexed(conn, "alice@enron.com"), _indexed(conn, "dave@enron.com")) == (["<a>", "<b>"], ["<b>"])
    conn.execute("DELETE FROM recipients WHERE recipient_address = 'dave@enron.com'")
    conn.execute("UPDATE recipients SET recipient_address = 'zoe@enron.com' WHERE email_id = 1")
    conn.execute("UPDATE emails SET from_address = 'erin@enron.com', body = 'skiing at Tahoe' WHERE id = ?", (new_id,))
    _check_index_matches_content(conn)
    assert _indexed(conn, "alice@enron.com") == ["<b>"] and _indexed(conn, "zoe@enron.com") == ["<a>"]
    assert _indexed(conn, "dave@enron.com") == [] and _indexed(conn, "carol@enron.com") == []
    assert _indexed(conn, "erin@enron.com") == ["<b>"]
    conn.execute("DELETE FROM recipients WHERE email_id = ?", (new_id,))
    conn.execute("DELETE FROM emails WHERE id = ?", (new_id,))
    _check_index_matches_content(conn)
    assert _indexed(conn, "erin@enron.com") == [] and _indexed(conn, "bob@enron.com") == ["<a>"]
    conn.close()


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
