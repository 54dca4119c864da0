"""The public ART·E datasets on the Hugging Face hub, read from the hub or from a local copy alike.

`corbt/enron-emails` is ~500,000 emails in sharded parquet under `data/`; `corbt/enron_emails_sample_questions`
holds the questions in `train-*.parquet` and `test-*.parquet`. A dataset argument that is a local directory
is read from disk; anything else is a hub id, downloaded once by `huggingface_hub` into its cache. Either
way the same code reads the parquet files, batch by batch, so the emails never sit in memory all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from agentrun.mailbox.records import Email, Scenario, Split
from agentrun.mailbox.schema import MailboxError

EMAILS_DATASET = "corbt/enron-emails"
QUESTIONS_DATASET = "corbt/enron_emails_sample_questions"
SPLITS: tuple[Split, ...] = ("train", "test")
BATCH_ROWS = 8192

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_EMAIL_COLUMNS = ("message_id", "subject", "from", "to", "cc", "bcc", "date", "body", "file_name")
_EMAIL_REQUIRED = frozenset({"message_id", "from", "date"})
_QUESTION_COLUMNS = ("id", "question", "answer", "message_ids", "how_realistic", "inbox_address", "query_date")
_QUESTION_REQUIRED = frozenset(_QUESTION_COLUMNS) - {"how_realistic"}


class DatasetError(MailboxError):
    """A dataset argument names no readable dataset: not a directory of parquet files, not downloadable."""


def resolve(dataset: str) -> Path:
    """The local directory holding `dataset`: the argument itself if it is one, else a hub download."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        return path
    if path.exists() or not _HUB_ID.fullmatch(dataset):
        raise DatasetError(f"{dataset}: not a directory, and not a Hugging Face dataset id (owner/name)")
    try:
        from huggingface_hub import snapshot_download  # optional: only downloading needs it
    except ImportError as err:
        raise DatasetError(
            f"{dataset} is not a local directory, and downloading it from the Hugging Face hub needs "
            "huggingface_hub: `pip install huggingface_hub`, or pass a local directory holding the "
            "dataset's parquet files"
        ) from err
    return Path(snapshot_download(repo_id=dataset, repo_type="dataset", allow_patterns=["*.parquet"]))


def parquet_files(directory: Path, split: Split | None = None) -> list[Path]:
    """The dataset's parquet shards (those of `split` only, when given), in a stable order."""
    root = directory / "data" if (directory / "data").is_dir() else directory
    files = sorted(path for path in root.rglob("*.parquet") if split is None or _in_split(path, split))
    if split is None and not files:
        raise DatasetError(f"{directory}: no parquet files (expected data/*.parquet, as on the hub)")
    return files


def _in_split(path: Path, split: Split) -> bool:
    return path.stem == split or path.name.startswith(f"{split}-") or path.parent.name == split


def email_count(files: list[Path]) -> int:
    """Rows in the shards, from their footers (for a progress bar, without reading any data)."""
    return sum(pq.ParquetFile(file).metadata.num_rows for file in files)


def read_emails(files: list[Path]) -> Iterator[Email]:
    for row in _rows(files, _EMAIL_COLUMNS, _EMAIL_REQUIRED):
        yield Email(
            message_id=row["message_id"],
            subject=row.get("subject") or "",
            from_address=row["from"],
            to=tuple(row.get("to") or ()),
            cc=tuple(row.get("cc") or ()),
            bcc=tuple(row.get("bcc") or ()),
            date=moment(row["date"]),
            body=row.get("body") or "",
            file_name=row.get("file_name") or "",
        )


def read_scenarios(directory: Path) -> list[Scenario]:
    """Every question of the train and test shards, with its split taken from the shard's name."""
    shards = {split: parquet_files(directory, split) for split in SPLITS}
    if not any(shards.values()):
        raise DatasetError(
            f"{directory}: no question shards (expected data/train-*.parquet and data/test-*.parquet, as on the hub)"
        )
    return [
        _scenario(row, split)
        for split, files in shards.items()
        for row in _rows(files, _QUESTION_COLUMNS, _QUESTION_REQUIRED)
    ]


def _scenario(row: dict[str, Any], split: Split) -> Scenario:
    how_realistic = row.get("how_realistic")
    return Scenario(
        id=row["id"],
        question=row["question"],
        answer=row["answer"],
        message_ids=tuple(row["message_ids"]),
        how_realistic=1.0 if how_realistic is None else how_realistic,
        inbox_address=row["inbox_address"],
        query_date=moment(row["query_date"]),
        split=split,
    )


def moment(value: datetime | date | str) -> datetime:
    """A timestamp as the parquet holds it: a timestamp, a date, or an ISO string ('2001-05-01')."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(value.strip())


def _rows(files: list[Path], columns: tuple[str, ...], required: frozenset[str]) -> Iterator[dict[str, Any]]:
    for file in files:
        shard = pq.ParquetFile(file)
        names = set(shard.schema_arrow.names)
        if missing := required - names:
            raise DatasetError(f"{file}: missing columns {', '.join(sorted(missing))}")
        for batch in shard.iter_batches(batch_size=BATCH_ROWS, columns=[c for c in columns if c in names]):
            yield from batch.to_pylist()
