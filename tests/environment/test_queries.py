"""Mailbox search and read against a real SQLite + FTS5 database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agentrun.mailbox import queries, schema
from tests.environment.conftest import INBOX


def ids(hits: list[queries.SearchHit]) -> list[str]:
    return [hit.message_id for hit in hits]


def test_search_is_restricted_to_the_inbox_sent_and_received(mailbox: queries.Mailbox) -> None:
    # m6 mentions Tahoe most but is not alice's; m2 is sent by alice, m5 reaches her by cc.
    assert set(ids(mailbox.search(INBOX, ["Tahoe"]))) == {"m1", "m3", "m4", "m5"}
    assert ids(mailbox.search(INBOX, ["budget"])) == ["m2"]
    assert ids(mailbox.search("frank@enron.com", ["Tahoe"])) == ["m6", "m5"]


def test_search_ranks_by_bm25_best_first(mailbox: queries.Mailbox) -> None:
    assert ids(mailbox.search(INBOX, ["Tahoe"], sent_before="2001-05-01")) == ["m1", "m5", "m3"]


def test_keywords_are_anded_phrases(mailbox: queries.Mailbox) -> None:
    assert ids(mailbox.search(INBOX, ["skiing", "Tahoe"])) == ["m1"]
    assert ids(mailbox.search(INBOX, ["Tahoe Grill"])) == ["m5"]
    assert ids(mailbox.search(INBOX, ["Grill Tahoe"])) == []


def test_snippet_marks_the_match(mailbox: queries.Mailbox) -> None:
    (hit,) = mailbox.search(INBOX, ["budget"])
    assert "<b>budget</b>" in hit.snippet.casefold()


def test_date_bounds_after_inclusive_before_exclusive(mailbox: queries.Mailbox) -> None:
    assert ids(mailbox.search(INBOX, ["Tahoe"], sent_after="2001-03-01 09:30:00")) == ["m4", "m1"]
    assert set(ids(mailbox.search(INBOX, ["Tahoe"], sent_before="2001-03-01T09:30:00"))) == {"m3", "m5"}
    assert ids(mailbox.search(INBOX, ["Tahoe"], sent_after="2001-02-01", sent_before="2001-03-01")) == ["m5"]


def test_timezone_aware_dates_compare_in_utc(mailbox: queries.Mailbox) -> None:
    # 2001-03-01 04:00 at UTC-06:00 is 10:00 UTC, after m1 (09:30 UTC).
    assert "m1" not in ids(mailbox.search(INBOX, ["Tahoe"], sent_after="2001-03-01T04:00:00-06:00"))
    assert queries.parse_date("2001-03-01T04:00:00-06:00") == "2001-03-01 10:00:00"
    assert queries.parse_date("0999-01-01") == "0999-01-01 00:00:00"  # zero-padded: compares as text


def test_from_and_to_filters(mailbox: queries.Mailbox) -> None:
    assert ids(mailbox.search(INBOX, ["Tahoe"], from_addr="bob@enron.com")) == ["m4", "m1"]
    assert ids(mailbox.search(INBOX, ["Tahoe"], to_addr="zoe@enron.com")) == ["m1"]
    assert ids(mailbox.search(INBOX, ["Tahoe"], to_addr="dave@enron.com")) == ["m1"]  # bcc counts
    assert ids(mailbox.search(INBOX, ["Tahoe"], to_addr="nobody@enron.com")) == []


def test_max_results_bounds_the_hits(mailbox: queries.Mailbox) -> None:
    assert ids(mailbox.search(INBOX, ["Tahoe"], max_results=2)) == ["m4", "m1"]
    with pytest.raises(queries.SearchError, match="max_results"):
        mailbox.search(INBOX, ["Tahoe"], max_results=0)


@pytest.mark.parametrize("date", ["yesterday", "2001-13-01", "05/01/2001", "", "0001-01-01T00:00:00+01:00"])
def test_malformed_date_is_a_search_error(mailbox: queries.Mailbox, date: str) -> None:
    with pytest.raises(queries.SearchError, match="YYYY-MM-DD"):
        mailbox.search(INBOX, ["Tahoe"], sent_before=date or " ")


@pytest.mark.parametrize(
    "keywords",
    [
        ['"Tahoe'],
        ["Tahoe NEAR office"],
        ["Tah*"],
        ["^Tahoe"],
        ["-Tahoe"],
        ["Tahoe OR budget"],
        ["(Tahoe)"],
        ["subject:Tahoe"],
        ["Tahoe\x00Grill"],
        ["\ud800Tahoe"],
        ["Tahoe", ""],
    ],
)
def test_query_syntax_in_keywords_is_plain_text(mailbox: queries.Mailbox, keywords: list[str]) -> None:
    assert set(ids(mailbox.search(INBOX, keywords))) <= {"m1", "m3", "m4", "m5"}


def test_keywords_without_words_give_no_results(mailbox: queries.Mailbox) -> None:
    assert mailbox.search(INBOX, []) == []
    assert mailbox.search(INBOX, ["", "!!!", '""', "*"]) == []
    assert queries.match_expression(['say "hi"', "---", "x\x00y"]) == '"say ""hi""" AND "x y"'


def test_read_returns_recipients_by_kind(mailbox: queries.Mailbox) -> None:
    email = mailbox.read("m1", INBOX)
    assert email == queries.EmailView(
        message_id="m1",
        subject="Ski trip to Tahoe",
        from_address="bob@enron.com",
        to=(INBOX, "zoe@enron.com"),
        cc=("carol@enron.com",),
        bcc=("dave@enron.com",),
        date="2001-03-01 09:30:00",
        body="We are going skiing in Tahoe next week. Tahoe has great snow.",
    )
    assert mailbox.read("m2", INBOX) is not None  # sent by the inbox


def test_read_outside_the_inbox_or_unknown_is_none(mailbox: queries.Mailbox) -> None:
    assert mailbox.read("m6", INBOX) is None
    assert mailbox.read("no-such-id", INBOX) is None
    assert mailbox.read("\ud800", INBOX) is None


def test_missing_database_is_a_mailbox_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(schema.MailboxError, match="agentrun data build"):
        queries.Mailbox(tmp_path / "emails.db")


def test_threads_share_a_mailbox(mailbox: queries.Mailbox) -> None:
    results: list[list[str]] = []

    def work() -> None:
        results.extend(ids(mailbox.search(INBOX, ["Tahoe"], sent_before="2001-05-01")) for _ in range(20))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["m1", "m5", "m3"]] * 80


def test_many_inboxes_in_turn_stay_correct(mailbox: queries.Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # More inboxes than a thread caches, then back to the first: evicted inbox tables are rebuilt.
    monkeypatch.setattr(queries, "MAX_CACHED_INBOXES", 2)
    inboxes = [INBOX, "bob@enron.com", "carol@enron.com", "frank@enron.com", "erin@enron.com", "zoe@enron.com"]
    first = [ids(mailbox.search(inbox, ["Tahoe"])) for inbox in inboxes]
    again = [ids(mailbox.search(inbox, ["Tahoe"])) for inbox in reversed(inboxes)]
    assert first == list(reversed(again))
    assert first[0] == ["m4", "m1", "m5", "m3"] and first[3] == ["m6", "m5"] and first[5] == ["m1"]


def test_full_text_index_drives_the_search(mailbox: queries.Mailbox) -> None:
    # Regression guard for the one plan that scales: FTS5 scans its matches (index "M", no rowid "="
    # constraint) and probes the inbox table by rowid, never the reverse.
    reader = mailbox._reader()
    sql = queries._SEARCH_SQL.format(table=reader.inbox_table(INBOX))
    params = dict(match='"tahoe"', from_addr=None, to_addr=None, sent_after=None, sent_before=None, limit=10)
    plan = [row[3] for row in reader.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert plan[0].startswith("SCAN emails_fts VIRTUAL TABLE INDEX 0:M")
    assert plan[1] == "SEARCH i USING INTEGER PRIMARY KEY (rowid=?)"
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in plan
