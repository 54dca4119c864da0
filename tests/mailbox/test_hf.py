"""The public ART·E datasets, read from local directories laid out and typed as on the hub."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentrun.mailbox import build, hf, schema, writer

EMAIL_SCHEMA = pa.schema([
    ("message_id", pa.string()), ("subject", pa.string()), ("from", pa.string()),
    ("to", pa.list_(pa.string())), ("cc", pa.list_(pa.string())), ("bcc", pa.list_(pa.string())),
    ("date", pa.timestamp("ns")), ("body", pa.string()), ("file_name", pa.string()),
])


def _email_row(n: int, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "message_id": f"<{n}.JavaMail.evans@thyme>", "subject": f"Deal {n}", "from": "jeff.skilling@enron.com",
        "to": ["kenneth.lay@enron.com"], "cc": [], "bcc": [], "date": datetime(2001, 3, 1 + n % 20, 9, n % 60),
        "body": f"Please review deal {n}.", "file_name": f"skilling-j/inbox/{n}.",
    }
    return row | fields


def _write_shards(directory: Path, rows: list[dict[str, object]], shards: int) -> None:
    (directory / "data").mkdir(parents=True)
    per = -(-len(rows) // shards)
    for i in range(shards):
        table = pa.Table.from_pylist(rows[i * per : (i + 1) * per], schema=EMAIL_SCHEMA)
        pq.write_table(table, directory / "data" / f"train-{i:05d}-of-{shards:05d}.parquet")


def _question(n: int, message_id: str, query_date: object) -> dict[str, object]:
    return {
        "id": n, "question": f"What is deal {n}?", "answer": f"deal {n}", "message_ids": [message_id],
        "how_realistic": 0.7, "inbox_address": "kenneth.lay@enron.com", "query_date": query_date,
    }


@pytest.fixture
def public_copy(tmp_path: Path) -> tuple[Path, Path]:
    """Local copies of corbt/enron-emails (3 shards) and corbt/enron_emails_sample_questions."""
    emails, questions = tmp_path / "enron-emails", tmp_path / "questions"
    rows = [_email_row(n) for n in range(25)]
    rows.append(_email_row(99, cc=None, bcc=None, subject=None))  # nulls, as some public rows have
    rows.append(_email_row(3, subject="duplicate id"))
    rows.append(_email_row(100, body="x" * 6000))
    _write_shards(emails, rows, shards=3)
    (questions / "data").mkdir(parents=True)
    train = [_question(1, "<1.JavaMail.evans@thyme>", "2001-06-01"), _question(2, "<100.JavaMail.evans@thyme>", "2001-06-01")]
    test = [_question(3, "<2.JavaMail.evans@thyme>", "2001-06-02 10:30:00")]
    pq.write_table(pa.Table.from_pylist(train), questions / "data" / "train-00000-of-00001.parquet")
    test_table = pa.Table.from_pylist(test).set_column(
        6, "query_date", pa.array([datetime(2001, 6, 2, 10, 30)], pa.timestamp("us"))
    )
    pq.write_table(test_table, questions / "data" / "test-00000-of-00001.parquet")
    return emails, questions


def test_build_from_local_copies_of_the_public_datasets(tmp_path: Path, public_copy: tuple[Path, Path]) -> None:
    emails, questions = public_copy
    report = build.build("hf", tmp_path / "out", emails_dataset=str(emails), questions_dataset=str(questions))
    assert report.emails.written == 26
    assert report.emails.skipped == {"duplicate_message_id": 1, "body_over_5000_chars": 1}
    assert (report.scenarios.written, report.scenarios.dropped) == (2, 1)  # question 2 cites the long email
    scenarios = writer.load_scenarios(tmp_path / "out" / "scenarios.parquet")
    assert [(s.id, s.split, s.query_date) for s in scenarios] == [
        (1, "train", datetime(2001, 6, 1)), (3, "test", datetime(2001, 6, 2, 10, 30)),
    ]
    conn = schema.open_readonly(tmp_path / "out" / schema.EMAILS_DB)
    assert conn.execute(
        "SELECT e.subject, e.file_name, r.recipient_address FROM emails e JOIN recipients r ON r.email_id = e.id "
        "WHERE e.message_id = '<99.JavaMail.evans@thyme>'"
    ).fetchall() == [("", "skilling-j/inbox/99.", "kenneth.lay@enron.com")]


def test_emails_cap_reads_only_the_first_emails(tmp_path: Path, public_copy: tuple[Path, Path]) -> None:
    emails, questions = public_copy
    report = build.build("hf", tmp_path / "out", emails=5, emails_dataset=str(emails), questions_dataset=str(questions))
    assert report.emails.written == 5
    assert (report.scenarios.written, report.scenarios.dropped) == (2, 1)


def test_emails_stream_in_shard_order(public_copy: tuple[Path, Path]) -> None:
    files = hf.parquet_files(public_copy[0])
    assert [f.name for f in files] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert hf.email_count(files) == 28
    first = next(hf.read_emails(files))
    assert (first.message_id, first.to, first.date) == ("<0.JavaMail.evans@thyme>", ("kenneth.lay@enron.com",), datetime(2001, 3, 1, 9, 0))


def test_a_directory_without_parquet_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(hf.DatasetError, match="no parquet files"):
        build.build("hf", tmp_path / "out", emails_dataset=str(tmp_path), questions_dataset=str(tmp_path))


def test_question_shards_must_be_named_by_split(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist([_question(1, "<1>", "2001-06-01")]), tmp_path / "data" / "part-0.parquet")
    with pytest.raises(hf.DatasetError, match="no question shards"):
        hf.read_scenarios(tmp_path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist([{"message_id": "<1>", "body": "hi"}]), tmp_path / "data" / "train-0.parquet")
    with pytest.raises(hf.DatasetError, match="missing columns date, from"):
        list(hf.read_emails(hf.parquet_files(tmp_path)))


def test_a_missing_local_path_is_not_taken_for_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(hf.DatasetError, match="not a directory"):
        hf.resolve(str(tmp_path / "no" / "such" / "copy"))


def test_hub_ids_without_huggingface_hub_say_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed, even where it is
    with pytest.raises(hf.DatasetError, match=r"pip install huggingface_hub`, or pass a local directory"):
        hf.resolve(hf.EMAILS_DATASET)
