"""The synthetic generator's difficulty settings, each verified on a built dataset: id style, hard-distractor
density (measured as how often the source is the first hit of the agent's own search), emails per inbox;
and the recipe a dataset directory records, so a directory built otherwise is never silently reused."""

from __future__ import annotations

import re
import sqlite3
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentrun.cli import data
from agentrun.mailbox import build, queries, schema, synthetic, writer
from agentrun.mailbox.records import Scenario

EMAILS = 2000
ENRON_ID = re.compile(r"<\d{8}\.\d{13}\.JavaMail\.evans@thyme>")
SHORT_ID = re.compile(r"<m\d{1,4}@thyme>")  # mailboxes of up to 2,000 emails count modulo a prime below 10,000


def _built(tmp_path: Path, **difficulty: object) -> tuple[Path, synthetic.Generated]:
    chosen = synthetic.Difficulty(**difficulty)  # type: ignore[arg-type]
    out = tmp_path / ("-".join(f"{k}={v}" for k, v in sorted(difficulty.items())) or "default")
    build.build("synthetic", out, seed=0, emails=EMAILS, difficulty=chosen)
    return out, synthetic.generate(0, EMAILS, difficulty=chosen)


def _hits(mailbox: queries.Mailbox, generated: synthetic.Generated, s: Scenario) -> list[str]:
    """The search tool's results for the question's keywords, in its inbox, before its date (as the
    environment imposes)."""
    keywords = list(generated.search_terms[s.id])
    return [hit.message_id for hit in mailbox.search(s.inbox_address, keywords, sent_before=s.query_date.isoformat())]


def first_hit_share(directory: Path, generated: synthetic.Generated) -> float:
    """Share of questions whose source is the first result of the agent's search for their keywords."""
    scenarios = writer.load_scenarios(directory / "scenarios.parquet")
    with queries.Mailbox(directory / schema.EMAILS_DB) as mailbox:
        return sum(_hits(mailbox, generated, s)[:1] == [s.message_ids[0]] for s in scenarios) / len(scenarios)


def _rows(directory: Path) -> list[tuple[str, ...]]:
    conn = sqlite3.connect(directory / schema.EMAILS_DB)
    try:
        return conn.execute("SELECT message_id, subject, from_address, date, body FROM emails ORDER BY id").fetchall()
    finally:
        conn.close()


def test_short_ids_are_compact_unique_and_change_nothing_else(tmp_path: Path) -> None:
    enron, _ = _built(tmp_path)
    short, _ = _built(tmp_path, message_id_style="short")
    enron_rows, short_rows = _rows(enron), _rows(short)
    assert all(ENRON_ID.fullmatch(row[0]) for row in enron_rows)
    assert all(SHORT_ID.fullmatch(row[0]) for row in short_rows)
    assert len({row[0] for row in short_rows}) == len(short_rows) == EMAILS
    assert [row[1:] for row in enron_rows] == [row[1:] for row in short_rows]  # the same mailbox, renamed
    renamed = dict(zip((row[0] for row in enron_rows), (row[0] for row in short_rows), strict=True))
    before = writer.load_scenarios(enron / "scenarios.parquet")
    after = writer.load_scenarios(short / "scenarios.parquet")
    assert [s.model_copy(update={"message_ids": tuple(renamed[m] for m in s.message_ids)}) for s in before] == after


@pytest.mark.parametrize("emails", [100, 1000])
def test_short_ids_of_small_mailboxes_are_unique_too(emails: int) -> None:
    generated = synthetic.generate(5, emails, difficulty=synthetic.Difficulty(message_id_style="short"))
    ids = [email.message_id for email in generated.emails]
    assert len(set(ids)) == len(ids) == emails and all(SHORT_ID.fullmatch(i) for i in ids)


def test_without_hard_distractors_the_source_is_the_first_hit(tmp_path: Path) -> None:
    shares = {d: first_hit_share(*_built(tmp_path, hard_distractors=d)) for d in (1.0, 0.5, 0.0)}
    assert shares[1.0] < 0.3  # the corpus-like default: ~15% measured
    assert shares[0.0] > 0.9  # ~100% measured: the source is the only email naming the keywords
    assert shares[1.0] < shares[0.5] < shares[0.0]


def test_without_hard_distractors_a_question_matter_is_its_source_alone(tmp_path: Path) -> None:
    directory, generated = _built(tmp_path, hard_distractors=0.0)
    scenarios = writer.load_scenarios(directory / "scenarios.parquet")
    with queries.Mailbox(directory / schema.EMAILS_DB) as mailbox:
        for s in scenarios:
            assert _hits(mailbox, generated, s) == list(s.message_ids), s.id
    default = writer.load_scenarios(_built(tmp_path)[0] / "scenarios.parquet")
    assert len(scenarios) > 2 * len(default)  # shorter threads: the same budget holds more questions


@pytest.mark.parametrize("per_inbox", [250, 500])
def test_emails_per_inbox_sets_the_inbox_count_and_size(tmp_path: Path, per_inbox: int) -> None:
    directory, _ = _built(tmp_path, emails_per_inbox=per_inbox)
    inboxes = build.stats(directory).inboxes
    assert len(inboxes) == EMAILS // per_inbox  # every inbox has questions
    # an inbox also receives newsletter copies addressed to others, so it holds a little more
    assert per_inbox <= statistics.mean(inbox.emails for inbox in inboxes) <= 1.2 * per_inbox


def test_a_directory_is_reused_only_for_its_recipe(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    recipe = build.Recipe("synthetic", seed=0, emails=1000)
    assert build.ensure(out, recipe) is not None
    assert build.built_from(out) == recipe.identity()
    assert build.ensure(out, recipe) is None  # reused
    with pytest.raises(build.DatasetMismatch, match=r"built with seed=0, .* seed=1 is asked for"):
        build.ensure(out, build.Recipe("synthetic", seed=1, emails=1000))
    short = build.Recipe("synthetic", seed=0, emails=1000, difficulty=synthetic.Difficulty(message_id_style="short"))
    with pytest.raises(build.DatasetMismatch, match="messageIdStyle='enron'.*messageIdStyle='short'"):
        build.ensure(out, short)


def test_a_directory_without_a_record_passes_for_the_default_difficulty_only(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    build.build("synthetic", out, emails=1000)
    (out / build.RECIPE_FILE).unlink()  # as an agentrun older than the record left it
    assert build.ensure(out, build.Recipe("synthetic", emails=1000)) is None
    easy = build.Recipe("synthetic", emails=1000, difficulty=synthetic.Difficulty(hard_distractors=0.0))
    with pytest.raises(build.DatasetMismatch, match="no build.json.*hardDistractors=0.0"):
        build.ensure(out, easy)


def test_data_build_takes_the_difficulty_and_records_it(tmp_path: Path) -> None:
    out = tmp_path / "easy"
    result = CliRunner().invoke(data.data, [
        "build", "--out", str(out), "--emails", "1000", "--message-id-style", "short", "--hard-distractors", "0",
        "--emails-per-inbox", "250", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert build.built_from(out) == {"source": "synthetic", "seed": 0, "emails": 1000, "messageIdStyle": "short",
                                     "hardDistractors": 0.0, "emailsPerInbox": 250}
    refused = CliRunner().invoke(data.data, ["build", "--source", "hf", "--out", str(out), "--hard-distractors", "0"])
    assert refused.exit_code == 2 and "--hard-distractors applies to --source synthetic" in refused.output
    out_of_range = CliRunner().invoke(data.data, ["build", "--out", str(out), "--hard-distractors", "1.5"])
    assert out_of_range.exit_code == 2 and "--hard-distractors" in out_of_range.output
