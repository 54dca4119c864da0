"""Mailbox bench: build a full-size synthetic mailbox, then time the agent's search and read tools on it.

The build (generation, filters, bulk insert, one FTS rebuild) must take under 2 minutes for 500,000
emails on 2 cores; `search_emails` must answer inbox-restricted queries in under 20 ms at p95. Queries
are shaped as agents write them, from the questions' own keywords, and are timed by shape, because the
cost of an FTS5 query is the length of its terms' posting lists: a codename is rare, a counterparty
common, an everyday word ("meeting") in a sizeable share of the corpus.

    PYTHONPATH=core python bench/mailbox.py [--emails 500000] [--queries 1000] [--out FILE]

Writes a JSON report (bench/results/mailbox.json by default) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentrun.mailbox import build, queries, schema, synthetic
from agentrun.mailbox.records import Scenario

Query = tuple[str, Scenario, list[str]]  # (shape, scenario, keywords)
EVERYDAY_WORDS = ("meeting", "price", "deal", "invoice", "call", "dinner", "flight", "budget", "confirm")


def query_set(generated: synthetic.Generated, count: int, seed: int) -> list[Query]:
    """`count` (shape, scenario, keywords) triples: the question's keywords, its codename alone, its
    counterparty with an everyday word, or an everyday word alone (the worst case)."""
    rng = random.Random(seed)
    chosen = []
    for _ in range(count):
        scenario = rng.choice(generated.scenarios)
        terms = list(generated.search_terms[scenario.id])
        shape = rng.choices(("question_terms", "codename", "term_and_word", "word"), weights=(4, 2, 2, 2))[0]
        keywords = {
            "question_terms": terms,
            "codename": terms[:1],
            "term_and_word": [terms[-1], rng.choice(EVERYDAY_WORDS)],
            "word": [rng.choice(EVERYDAY_WORDS)],
        }[shape]
        chosen.append((shape, scenario, keywords))
    return chosen


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3), "p95": round(cuts[94], 3), "p99": round(cuts[98], 3),
        "max": round(max(samples_ms), 3),
    }


def search_pass(dataset: Path, chosen: list[Query]) -> tuple[dict[str, list[float]], list[int], list[float]]:
    """Search milliseconds by shape, hit counts, and read milliseconds (the source and the top hit of
    each search), on a fresh `Mailbox`, so per-inbox caches start cold."""
    by_shape: dict[str, list[float]] = defaultdict(list)
    hit_counts, reads = [], []
    with queries.Mailbox(dataset / schema.EMAILS_DB) as mailbox:
        for shape, scenario, keywords in chosen:
            started = time.perf_counter()
            hits = mailbox.search(scenario.inbox_address, keywords, sent_before=scenario.query_date.isoformat())
            by_shape[shape].append(1000 * (time.perf_counter() - started))
            hit_counts.append(len(hits))
            for message_id in [scenario.message_ids[0]] + [hit.message_id for hit in hits[:1]]:
                started = time.perf_counter()
                mailbox.read(message_id, scenario.inbox_address)
                reads.append(1000 * (time.perf_counter() - started))
    return by_shape, hit_counts, reads


def measure(dataset: Path, generated: synthetic.Generated, count: int, seed: int) -> dict[str, Any]:
    """Queries in random order (every search may hit another inbox, as in an evaluation of many
    scenarios at once), then the same queries grouped by inbox (as an episode's searches are)."""
    chosen = query_set(generated, count, seed)
    by_shape, hit_counts, reads = search_pass(dataset, chosen)
    grouped, _, _ = search_pass(dataset, sorted(chosen, key=lambda query: query[1].inbox_address))
    return {
        "search_ms": percentiles([ms for samples in by_shape.values() for ms in samples]),
        "search_ms_by_shape": {shape: {"queries": len(s), **percentiles(s)} for shape, s in sorted(by_shape.items())},
        "search_ms_grouped_by_inbox": percentiles([ms for samples in grouped.values() for ms in samples]),
        "search_mean_hits": round(statistics.fmean(hit_counts), 2),
        "read_ms": percentiles(reads),
        "reads": len(reads),
    }


def posting_share(dataset: Path, words: tuple[str, ...]) -> dict[str, float]:
    """Share of all emails each everyday word occurs in (what an FTS5 query on it has to walk)."""
    conn = sqlite3.connect(dataset / schema.EMAILS_DB)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, 'emails_fts', 'row')")
        total = conn.execute("SELECT count(*) FROM emails").fetchone()[0]
        share = {w: conn.execute("SELECT doc FROM temp.vocab WHERE term = ?", (w,)).fetchone() for w in words}
        return {w: round(row[0] / total, 4) if row else 0.0 for w, row in share.items()}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mailbox.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        dataset = Path(scratch) / "dataset"
        report = build.build("synthetic", dataset, seed=args.seed, emails=args.emails, progress=False)
        generated = synthetic.generate(args.seed, args.emails)  # the same questions, for their keywords
        result = {
            "benchmark": "mailbox",
            "emails": report.emails.written,
            "scenarios": report.scenarios.written,
            "build_seconds": round(report.seconds, 2),
            "db_bytes": (dataset / schema.EMAILS_DB).stat().st_size,
            "queries": args.queries,
            **measure(dataset, generated, args.queries, args.seed),
            "everyday_word_doc_share": posting_share(dataset, EVERYDAY_WORDS),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
