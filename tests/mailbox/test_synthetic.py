"""The synthetic mailbox: deterministic, split by inbox, and with questions that are answerable but not trivial."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from agentrun.mailbox import build, schema, synthetic
from agentrun.mailbox.records import Scenario

from .conftest import Built

INBOX_EMAILS = "(e.from_address = :inbox OR e.id IN (SELECT email_id FROM recipients WHERE recipient_address = :inbox))"


def _content_hash(directory: Path) -> str:
    conn = sqlite3.connect(directory / schema.EMAILS_DB)
    digest = hashlib.sha256()
    for table in ("SELECT * FROM emails ORDER BY id", "SELECT * FROM recipients ORDER BY rowid"):
        for row in conn.execute(table):
            digest.update(repr(row).encode())
    conn.close()
    digest.update((directory / "scenarios.parquet").read_bytes())
    return digest.hexdigest()


def test_same_seed_same_mailbox_other_seed_other_mailbox(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        build.build("synthetic", tmp_path / name, seed=seed, emails=1500)
    assert _content_hash(tmp_path / "a") == _content_hash(tmp_path / "b")
    assert _content_hash(tmp_path / "a") != _content_hash(tmp_path / "c")


def test_default_dataset_size_and_splits(default_dataset: Built) -> None:
    report, scenarios = default_dataset.report, default_dataset.scenarios
    assert report.emails.written == synthetic.DEFAULT_EMAILS and report.emails.skipped == {}
    assert report.scenarios.dropped == 0
    assert sum(s.split == "test" for s in scenarios) >= 250
    train = {s.inbox_address for s in scenarios if s.split == "train"}
    test = {s.inbox_address for s in scenarios if s.split == "test"}
    assert train and test and not train & test
    assert all(0.0 <= s.how_realistic <= 1.0 for s in scenarios)
    assert len({s.id for s in scenarios}) == len(scenarios)


def _templates(generated: synthetic.Generated, scenarios: list[Scenario]) -> set[str]:
    """Questions with their keywords blanked: the distinct phrasings."""
    shapes = set()
    for s in scenarios:
        question = s.question
        for term in generated.search_terms[s.id]:
            question = question.replace(term, "_")
        shapes.add(question)
    return shapes


def test_questions_come_in_many_phrasings(default_dataset: Built) -> None:
    assert len(_templates(default_dataset.generated, default_dataset.scenarios)) >= 20


def test_sources_are_in_the_inbox_before_the_question_and_hold_the_answer(default_dataset: Built) -> None:
    conn = schema.open_readonly(default_dataset.directory / schema.EMAILS_DB)
    for s in default_dataset.scenarios:
        for message_id in s.message_ids:
            row = conn.execute(
                f"SELECT e.subject, e.body, e.date FROM emails e WHERE e.message_id = :id AND {INBOX_EMAILS}",
                {"id": message_id, "inbox": s.inbox_address},
            ).fetchone()
            assert row is not None, (s.id, message_id)
            subject, body, date = row
            assert date < s.query_date.isoformat(sep=" "), s.id
            assert s.answer in body, s.id
            text = f"{subject}\n{body}".lower()
            assert all(term.lower() in text for term in default_dataset.generated.search_terms[s.id]), s.id
            assert all(term in s.question for term in default_dataset.generated.search_terms[s.id]), s.id


def _search(conn: sqlite3.Connection, s: Scenario, terms: tuple[str, ...], before: bool = True) -> list[str]:
    """Inbox-restricted FTS5 search for all `terms`, best bm25 first, as the agent's search tool does."""
    match = " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)
    date = "e.date < :date" if before else "e.date >= :date"
    rows = conn.execute(
        f"SELECT e.message_id FROM emails_fts JOIN emails e ON e.id = emails_fts.rowid "
        f"WHERE emails_fts MATCH :match AND {INBOX_EMAILS} AND {date} ORDER BY bm25(emails_fts)",
        {"match": match, "inbox": s.inbox_address, "date": s.query_date.isoformat(sep=" ")},
    )
    return [row[0] for row in rows]


def test_the_source_is_found_but_often_not_first(default_dataset: Built) -> None:
    conn = schema.open_readonly(default_dataset.directory / schema.EMAILS_DB)
    ranks = []
    for s in default_dataset.scenarios:
        hits = _search(conn, s, default_dataset.generated.search_terms[s.id])
        assert s.message_ids[0] in hits, s.id
        ranks.append(hits.index(s.message_ids[0]))
    assert sum(rank > 0 for rank in ranks) / len(ranks) >= 0.6
    assert sum(rank < 10 for rank in ranks) / len(ranks) >= 0.95


def _shape(answer: str) -> re.Pattern[str]:
    """A pattern for values written like `answer` ("4:30 PM" -> one digit, colon, two digits, letters)."""
    parts = re.findall(r"\d+|[A-Za-z]+|.", answer)
    body = "".join(
        rf"\d{{{len(p)}}}" if p.isdigit() else "[A-Za-z]+" if p.isalpha() else re.escape(p) for p in parts
    )
    return re.compile(rf"(?<![\w.,:$-]){body}(?![\w])")


def test_distractors_quote_revise_and_come_after_the_question(default_dataset: Built) -> None:
    conn = schema.open_readonly(default_dataset.directory / schema.EMAILS_DB)
    scenarios = default_dataset.scenarios
    quoted = stale = later = 0
    for s in scenarios:
        terms = default_dataset.generated.search_terms[s.id]
        (source_date,) = conn.execute("SELECT date FROM emails WHERE message_id = ?", s.message_ids).fetchone()
        quoting, earlier = False, []
        for message_id in _search(conn, s, terms):
            body, date = conn.execute("SELECT body, date FROM emails WHERE message_id = ?", (message_id,)).fetchone()
            quoting = quoting or (message_id not in s.message_ids and s.answer in body)  # a reply or forward
            earlier += [body] if date < source_date else []
        quoted += quoting
        shape = _shape(s.answer)
        stale += any(value != s.answer for body in earlier for value in shape.findall(body))  # an older value
        later += bool(_search(conn, s, terms, before=False))  # the matter goes on after the question
    assert quoted / len(scenarios) >= 0.4
    assert stale / len(scenarios) >= 0.35
    assert later / len(scenarios) >= 0.3


@pytest.mark.parametrize("emails", [100, 2500])
def test_small_mailboxes_have_exact_size_and_valid_questions(tmp_path: Path, emails: int) -> None:
    generated = synthetic.generate(3, emails)
    mail = list(generated.emails)
    assert len(mail) == len(generated.emails) == emails
    assert len({m.message_id for m in mail}) == emails
    by_id = {m.message_id: m for m in mail}
    assert {s.split for s in generated.scenarios} == {"train", "test"}
    for s in generated.scenarios:
        source = by_id[s.message_ids[0]]
        assert s.inbox_address in (source.from_address, *source.to, *source.cc)
        assert source.date < s.query_date and s.answer in source.body


def test_too_few_inboxes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 inboxes"):
        synthetic.generate(0, 1000, inboxes=1)
