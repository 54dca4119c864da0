"""Mailbox search and read against a real SQLite + FTS5 database."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from agentrun.mailbox import queries, schema, synthetic, writer
from agentrun.mailbox.records import Email
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


def test_read_hides_emails_sent_on_or_after_sent_before(mailbox: queries.Mailbox) -> None:
    # m1 was sent at 2001-03-01 09:30:00; the bound is exclusive, as in search
    assert mailbox.read("m1", INBOX, sent_before="2001-03-01 09:30:01") is not None
    assert mailbox.read("m1", INBOX, sent_before="2001-03-01 09:30:00") is None
    assert mailbox.read("m1", INBOX, sent_before="2001-03-01") is None
    assert mailbox.read("m4", INBOX) is not None and mailbox.read("m4", INBOX, sent_before="2001-05-01") is None


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


def test_many_inboxes_in_turn_stay_correct(mailbox: queries.Mailbox) -> None:
    inboxes = [INBOX, "bob@enron.com", "carol@enron.com", "frank@enron.com", "erin@enron.com", "zoe@enron.com"]
    first = [ids(mailbox.search(inbox, ["Tahoe"])) for inbox in inboxes]
    again = [ids(mailbox.search(inbox, ["Tahoe"])) for inbox in reversed(inboxes)]
    assert first == list(reversed(again))
    assert first[0] == ["m4", "m1", "m5", "m3"] and first[3] == ["m6", "m5"] and first[5] == ["m1"]


def test_inbox_addresses_match_exactly(mailbox: queries.Mailbox) -> None:
    # Like `from_address = ?`: case-sensitive, no trimming, no partial address.
    assert mailbox.search("Alice@enron.com", ["Tahoe"]) == []
    assert mailbox.search(" alice@enron.com", ["Tahoe"]) == []
    assert mailbox.search("alice", ["Tahoe"]) == []
    assert mailbox.search("", ["Tahoe"]) == []


def test_address_tokens_are_not_keywords(mailbox: queries.Mailbox) -> None:
    token = schema.participant_token(INBOX)
    assert mailbox.search(INBOX, [token]) == []
    assert mailbox.search(INBOX, ["Tahoe", token]) == []


def test_snippets_come_from_subject_or_body_with_many_participants(tmp_path: Path) -> None:
    # Over 15 participants, the inbox's token within the first 15 but not first, and a body whose match
    # opens it: without a sentence break before every token, FTS5's snippet() would show the participants
    # column (it adds a bonus to a window moved back to a sentence start, and the body's needs no move).
    crowd = tuple(f"person{i:02}@enron.com" for i in range(20))
    email = Email(
        message_id="crowd", subject="Offsite", from_address="bob@enron.com", to=crowd, date=datetime(2001, 3, 1),
        body="Budget first. The offsite is in Tahoe and we go by bus, leaving early on Friday morning.",
    )
    writer.write_emails([email], tmp_path / schema.EMAILS_DB)
    with queries.Mailbox(tmp_path / schema.EMAILS_DB) as box:
        (hit,) = box.search(crowd[5], ["budget"])
    assert hit.snippet.startswith("<b>Budget</b> first.")


# The plain statement of what a search returns: the keywords' bm25 ranking over the emails that the
# inbox sent or received (by the recipients join), before the scenario's date.
_REFERENCE_SQL = """
SELECT e.message_id, bm25(emails_fts, 1.0, 1.0, 0.0)
FROM emails_fts JOIN emails e ON e.id = emails_fts.rowid
WHERE emails_fts MATCH :keywords AND e.date < :sent_before
  AND (e.from_address = :inbox OR e.id IN (SELECT email_id FROM recipients WHERE recipient_address = :inbox))
"""


def test_search_agrees_with_a_reference_query_on_a_synthetic_mailbox(tmp_path: Path) -> None:
    generated = synthetic.generate(0, 3000)
    path = tmp_path / schema.EMAILS_DB
    writer.write_emails(generated.emails, path)
    conn = schema.open_readonly(path)
    compared = 0
    with queries.Mailbox(path) as box:
        for scenario in generated.scenarios[:80]:
            terms = list(generated.search_terms[scenario.id])
            sent_before = scenario.query_date.isoformat(sep=" ")
            for keywords in (terms, terms[:1], [terms[-1], "meeting"], ["deal"]):
                match = f"{{subject body}} : ({queries.match_expression(keywords)})"
                params = {"keywords": match, "sent_before": sent_before, "inbox": scenario.inbox_address}
                scores = dict(conn.execute(_REFERENCE_SQL, params).fetchall())
                hits = ids(box.search(scenario.inbox_address, keywords, sent_before=sent_before))
                # Scores, not ids, so that the order among equal scores is free.
                assert [scores[hit] for hit in hits] == sorted(scores.values())[:10]
                compared += len(hits)
    conn.close()
    assert compared > 1000


def test_full_text_index_drives_the_search(mailbox: queries.Mailbox) -> None:
    # Regression guard for the one plan that scales: FTS5 scans its matches for the inbox and keywords
    # together (index "M", no rowid "=" constraint) and each match probes `emails` by rowid. (On this
    # six-email mailbox SQLite also puts a Bloom filter before the probe; on a large one it does not.)
    conn = mailbox._conn()
    params = dict(
        match=queries.search_match(INBOX, '"tahoe"'), from_addr=None, to_addr=None, sent_after=None,
        sent_before=None, limit=10,
    )
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + queries._SEARCH_SQL, params)]
    assert plan[0].startswith("SCAN emails_fts VIRTUAL TABLE INDEX 0:M")
    assert "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)" in plan[1:3]
