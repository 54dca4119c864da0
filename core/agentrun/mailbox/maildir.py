"""The raw Enron corpus as CMU distributes it: `maildir/<user>/<folder>/<n>.` files, one RFC 822 message each.

Parsed with the standard library's `email` package. The corpus has its share of broken dates, stray
8-bit bytes and odd encodings; a file that still cannot be made into an email is skipped and counted by
reason rather than stopping a build of 500,000 files. The maildir has no questions: a build from it has
none unless a questions dataset is given as well.
"""

from __future__ import annotations

import email
import email.errors
import os
from collections import Counter
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from agentrun.mailbox.records import Email
from agentrun.mailbox.schema import MailboxError


class MaildirError(MailboxError):
    """The maildir path is missing or holds no message files."""


class Maildir:
    """The message files under a maildir root, iterated as `Email`s; `skipped` counts the files that were not."""

    def __init__(self, path: Path) -> None:
        root = path / "maildir" if (path / "maildir").is_dir() else path
        if not root.is_dir():
            raise MaildirError(f"{path}: no such directory (expected the Enron maildir: maildir/<user>/<folder>/<n>.)")
        self.root = root
        self.files = _message_files(root)
        if not self.files:
            raise MaildirError(f"{root}: no message files (expected <user>/<folder>/<n>. files)")
        self.skipped: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Email]:
        for file in self.files:
            try:
                parsed = parse(file.read_bytes(), file.relative_to(self.root).as_posix())
            except OSError:
                parsed = "unreadable"
            if isinstance(parsed, str):
                self.skipped[parsed] += 1
            else:
                yield parsed


def _message_files(root: Path) -> list[Path]:
    """Every file under `root`, sorted so that builds are reproducible."""
    found = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        found.extend(Path(directory, name) for name in sorted(names) if not name.startswith("."))
    return found


def parse(raw: bytes, file_name: str) -> Email | str:
    """The email in `raw`, or why there is none ('no_message_id', 'bad_date', 'no_sender', 'unparseable')."""
    try:
        message = email.message_from_bytes(raw)
        message_id = _header(message, "Message-ID").strip()
        if not message_id:
            return "no_message_id"
        try:
            sent = parsedate_to_datetime(_header(message, "Date"))
        except (TypeError, ValueError, IndexError):
            return "bad_date"
        sender = _addresses(message, "From")
        if not sender:
            return "no_sender"
        return Email(
            message_id=message_id,
            subject=_header(message, "Subject"),
            from_address=sender[0],
            to=tuple(_addresses(message, "To")),
            cc=tuple(_addresses(message, "Cc")),
            bcc=tuple(_addresses(message, "Bcc")),
            date=sent,
            body=_body(message),
            file_name=file_name,
        )
    except (ValueError, LookupError, email.errors.MessageError):
        return "unparseable"


def _clean(text: str) -> str:
    """Undo the parser's surrogate escapes: the corpus's stray 8-bit bytes, read as UTF-8 (or replaced)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header(message: Message, name: str) -> str:
    raw = message.get(name)
    if raw is None:
        return ""
    try:
        return _clean(str(make_header(decode_header(str(raw)))))
    except (email.errors.HeaderParseError, LookupError, UnicodeError):
        return _clean(str(raw))


def _addresses(message: Message, name: str) -> list[str]:
    """Bare lower-case addresses; Enron headers wrap long lists over lines and repeat names as X-To."""
    values = [_clean(str(value)) for value in message.get_all(name, [])]
    return [address.strip().lower() for _, address in getaddresses(values) if address.strip()]


def _body(message: Message) -> str:
    """The text/plain parts (any text part if there is none), decoded."""
    parts = [part for part in message.walk() if not part.is_multipart()]
    texts = [p for p in parts if p.get_content_type() == "text/plain"] or [
        p for p in parts if p.get_content_maintype() == "text"
    ]
    return "\n".join(_decoded(part) for part in texts)


def _decoded(part: Message) -> str:
    """A part's text by its declared charset; undeclared, UTF-8 if it is valid, else Latin-1 (never fails)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    try:
        return payload.decode(charset, "replace") if charset else payload.decode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return payload.decode("latin-1")
