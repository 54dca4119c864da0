"""`agentrun data build` and `agentrun data stats` through click, with their error messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from agentrun.cli import data
from agentrun.mailbox import build, schema


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(data.data, list(args))
    return result.exit_code, result.output


def test_build_then_stats(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    code, output = _run("build", "--source", "synthetic", "--out", str(out), "--emails", "1200", "--seed", "4", "--no-progress")
    assert code == 0, output
    assert "emails: 1,200 written" in output
    assert (out / schema.EMAILS_DB).is_file() and (out / "scenarios.parquet").is_file()
    assert not list(out.glob(".*partial"))
    code, output = _run("stats", str(out))
    assert code == 0, output
    assert "emails     1,200" in output and "test " in output and "train " in output


def test_stats_counts_each_questioned_inbox(tmp_path: Path) -> None:
    build.build("synthetic", tmp_path, emails=1200)
    summary = build.stats(tmp_path)
    conn = sqlite3.connect(tmp_path / schema.EMAILS_DB)
    for inbox in summary.inboxes:
        expected = conn.execute(
            "SELECT count(*) FROM emails e WHERE e.from_address = ?1 "
            "OR EXISTS (SELECT 1 FROM recipients r WHERE r.email_id = e.id AND r.recipient_address = ?1)",
            (inbox.address,),
        ).fetchone()[0]
        assert inbox.emails == expected > 0
    assert sum(i.questions for i in summary.inboxes) == sum(summary.questions.values()) > 0
    assert summary.emails == 1200


def test_stats_of_a_missing_directory(tmp_path: Path) -> None:
    code, output = _run("stats", str(tmp_path / "nowhere"))
    assert code == 1 and "no such dataset directory" in output and "agentrun data build --out" in output
    code, output = _run("stats", str(tmp_path))
    assert code == 1 and "no mailbox database" in output


def test_maildir_source_needs_an_existing_maildir(tmp_path: Path) -> None:
    code, output = _run("build", "--source", "maildir", "--out", str(tmp_path / "out"))
    assert code == 2 and "--source maildir needs --maildir PATH" in output
    code, output = _run("build", "--source", "maildir", "--out", str(tmp_path / "out"), "--maildir", str(tmp_path / "x"))
    assert code == 2 and "--maildir" in output and "is not a directory" in output


def test_hf_source_with_a_directory_without_parquet(tmp_path: Path) -> None:
    code, output = _run("build", "--source", "hf", "--out", str(tmp_path / "out"), "--emails-dataset", str(tmp_path),
                        "--questions-dataset", str(tmp_path), "--no-progress")
    assert code == 1 and "no parquet files" in output
    assert not (tmp_path / "out" / schema.EMAILS_DB).exists()


def test_options_of_other_sources_are_refused(tmp_path: Path) -> None:
    code, output = _run("build", "--source", "hf", "--out", str(tmp_path), "--seed", "3")
    assert code == 2 and "--seed applies to --source synthetic, not hf" in output
    code, output = _run("build", "--out", str(tmp_path), "--questions-dataset", "corbt/x")
    assert code == 2 and "--questions-dataset applies to --source hf or maildir" in output


def test_help_names_the_sources() -> None:
    code, output = _run("build", "--help")
    assert code == 0 and all(source in output for source in ("synthetic", "hf", "maildir"))
