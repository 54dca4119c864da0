"""Typed records that cross the mailbox boundary: an email as sources produce it, and a scenario.

A scenario is one question about one inbox, answerable from the emails in `message_ids` that were sent
before `query_date`. Column names follow the public `corbt/enron_emails_sample_questions` dataset plus a
`split` column (train or test).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Split = Literal["train", "test"]


class Email(BaseModel):
    """One message, as every data source yields it before it is written to `emails.db`."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    subject: str = ""
    from_address: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    date: datetime
    body: str = ""
    file_name: str = ""


class Scenario(BaseModel):
    """One question with its reference answer and the ids of the emails that contain it."""

    model_config = ConfigDict(frozen=True)

    id: int
    question: str
    answer: str
    message_ids: tuple[str, ...] = Field(min_length=1)
    how_realistic: float = 1.0
    inbox_address: str
    query_date: datetime
    split: Split
