"""Writing synthetic emails: letters, replies and forwards in Enron's style, and whole matter threads.

A matter's thread is where a question's difficulty comes from: besides the email that states a fact
(the question's source) it holds an introduction and the matter's other facts (same keywords, other
answers), stale values that a later email revises, and replies and forwards that quote a fact (a valid
answer, but not the cited source). Those hard distractors come at a chosen density: every one of them
at 1 (the default), none at 0, when only the source names the question's keywords and is its first hit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from agentrun.mailbox import facts, vocabulary
from agentrun.mailbox.people import Cast, Person
from agentrun.mailbox.records import Email

REVISED_SHARE = 0.45  # facts that change once before the final value
QUOTED_SHARE = 0.55  # final facts quoted by a reply or forward
STALE_QUOTE_SHARE = 0.4  # revised facts whose stale value is quoted too
# Ids number emails by a bijection modulo a prime (the multiplier is a prime too): unique, but in no
# telling order, so an id says nothing about which emails belong to a question or which came first.
_ID_PRIME = 1_000_000_007
_ID_MULTIPLIER = 982_451_653
SHORT_ID_FLOOR = 1000  # short ids count modulo a prime above twice this or twice the mailbox, if larger

MessageIdStyle = Literal["enron", "short"]


def _prime_above(n: int) -> int:
    candidate = n + 1
    while any(candidate % d == 0 for d in range(2, int(candidate**0.5) + 1)):
        candidate += 1
    return candidate


@dataclass(frozen=True)
class MessageIds:
    """How a mailbox names its emails: `enron`, the corpus's JavaMail ids (27 tokens for a tokenizer that
    splits digits, `<10170892.1075912258237.JavaMail.evans@thyme>`), or `short` ones (`<m4821@thyme>`)."""

    style: MessageIdStyle = "enron"
    modulus: int = _ID_PRIME

    @classmethod
    def for_mailbox(cls, style: MessageIdStyle, emails: int) -> MessageIds:
        """Ids for a mailbox of about `emails` emails: short ones count modulo a prime above twice that
        (a question thread's few emails over the size stay far below it), so they stay unique and short."""
        return cls(style, _prime_above(2 * max(emails, SHORT_ID_FLOOR)) if style == "short" else _ID_PRIME)

    def make(self, rng: random.Random, sequence: int) -> str:
        salt = rng.randrange(10**7, 10**8)  # drawn for both styles: the style changes the ids and nothing else
        number = sequence * _ID_MULTIPLIER % self.modulus
        if self.style == "short":
            return f"<m{number}@thyme>"
        return f"<{salt}.{1_075_000_000_000 + number}.JavaMail.evans@thyme>"


def kept(rng: random.Random, share: float) -> bool:
    """True with probability `share`; at 0 or 1 nothing is drawn, so a full share leaves the random stream
    (and so the mailbox) exactly as it was before shares existed."""
    return share >= 1 or (share > 0 and rng.random() < share)


class Composer:
    """Turns people and text into `Email`s; one per mailbox, so ids never repeat."""

    def __init__(self, rng: random.Random, cast: Cast, first_sequence: int = 0, ids: MessageIds = MessageIds()) -> None:
        self.rng = rng
        self.cast = cast
        self.sequence = first_sequence
        self.ids = ids

    def email(
        self, sender: str, to: list[str], subject: str, body: str, when: datetime,
        cc: list[str] | None = None, bcc: list[str] | None = None,
    ) -> Email:
        self.sequence += 1
        message_id = self.ids.make(self.rng, self.sequence)
        return Email(
            message_id=message_id, subject=subject, from_address=sender, to=tuple(to), cc=tuple(cc or ()),
            bcc=tuple(bcc or ()), date=when, body=body,
        )

    def letter(
        self, sender: Person, to: list[Person], cc: list[Person], subject: str, text: str, when: datetime,
        slots: dict[str, str],
    ) -> Email:
        """A short business email: greeting, the text, sometimes a padding sentence, sign-off."""
        rng = self.rng
        greeting = rng.choice(vocabulary.GREETINGS).format(to_first=to[0].first)
        if rng.random() < 0.6:
            text = f"{text} {rng.choice(vocabulary.BUSINESS_SENTENCES).format_map(slots)}"
        closing = f"{rng.choice(vocabulary.SIGNOFFS)}\n{sender.first}".strip()
        body = "\n\n".join(part for part in (greeting, text, closing) if part)
        return self.email(sender.address, [p.address for p in to], subject, body, when, [p.address for p in cc])

    def reply(self, original: Email, when: datetime) -> Email:
        """The first recipient answers the sender, quoting the original below an Outlook header."""
        people = self.cast.by_address
        sender, to = people[original.to[0]], people[original.from_address]
        quoted = (
            f" -----Original Message-----\nFrom: \t{to.filed_as}  \nSent:\t{original.date:%A, %B %d, %Y %I:%M %p}\n"
            f"To:\t{'; '.join(people[a].filed_as for a in original.to)}\nSubject:\t{original.subject}\n\n"
            f"{original.body}"
        )
        body = f"{self.rng.choice(vocabulary.ACKS)}\n\n{sender.first}\n\n{quoted}"
        subject = _prefixed("RE: ", original.subject)
        return self.email(sender.address, [to.address], subject, body, when, list(original.cc))

    def forward(self, original: Email, forwarder: Person, to: Person, when: datetime) -> Email:
        """`forwarder` passes the original on with Lotus Notes' forward banner, as Enron's mail shows."""
        sender = self.cast.by_address[original.from_address]
        rule = "-" * 22
        quoted = (
            f"{rule} Forwarded by {forwarder.name}/HOU/ECT on {when:%m/%d/%Y %I:%M %p} {rule}-----\n\n\n"
            f"{sender.name} <{sender.address}> on {original.date:%m/%d/%Y %I:%M:%S %p}\n"
            f"To: {', '.join(original.to)}\ncc: {', '.join(original.cc)}\nSubject: {original.subject}\n\n"
            f"{original.body}"
        )
        body = f"{self.rng.choice(vocabulary.FORWARD_NOTES)}\n\n{quoted}"
        return self.email(forwarder.address, [to.address], _prefixed("FW: ", original.subject), body, when)


def _prefixed(prefix: str, subject: str) -> str:
    return subject if subject.upper().startswith(prefix) else prefix + subject


@dataclass(frozen=True)
class Matter:
    """A deal, meeting, trip... in one owner's inbox, named by a codename and a counterparty."""

    kind: facts.Kind
    owner: Person
    contact: Person
    colleague: Person
    slots: dict[str, str]
    attributes: tuple[facts.Attribute, ...]
    start: datetime


@dataclass(frozen=True)
class Fact:
    """The final (latest) statement of an attribute: what a question about it asks for and cites."""

    attribute: facts.Attribute
    value: str
    source: Email


def _later(rng: random.Random, when: datetime, low_hours: int = 2, high_hours: int = 72) -> datetime:
    """`when` plus a gap, pushed into office hours when it lands at night; always after `when`."""
    later = when + timedelta(hours=rng.randrange(low_hours, high_hours), minutes=rng.randrange(1, 60),
                             seconds=rng.randrange(60))
    if 7 <= later.hour < 20:
        return later
    morning = (later + timedelta(days=1) if later.hour >= 20 else later).replace(hour=rng.randrange(7, 10))
    return max(morning, when + timedelta(minutes=1))


def _fresh(rng: random.Random, attribute: facts.Attribute, when: datetime, slots: dict[str, str], old: str) -> str:
    """A new value for a revision: never equal to the one it replaces."""
    value = attribute.make(rng, when, slots)
    while value == old:
        value = attribute.make(rng, when, slots)
    return value


class ThreadWriter:
    """Writes a matter as a thread: introduction, one email per fact, revisions, replies and forwards.

    `distractors` scales how often the emails that are not a fact's final statement are written (the
    introduction, revised values, quotes): 1 as the corpus-like default, 0 never.
    """

    def __init__(self, composer: Composer, distractors: float = 1.0) -> None:
        self.composer = composer
        self.rng = composer.rng
        self.distractors = distractors

    def parties(self, matter: Matter) -> tuple[Person, list[Person], list[Person]]:
        """Sender, to and cc of one matter email; the owner is always one of them."""
        rng, owner, contact, colleague = self.rng, matter.owner, matter.contact, matter.colleague
        draw = rng.random()
        if draw < 0.4:
            return owner, [contact], [colleague] if rng.random() < 0.4 else []
        if draw < 0.75:
            return contact, [owner], [colleague] if rng.random() < 0.3 else []
        return colleague, [owner], [contact] if rng.random() < 0.3 else []

    def statement(self, matter: Matter, attribute: facts.Attribute, templates: tuple[str, ...],
                  when: datetime, **values: str) -> Email:
        """An email stating a fact; it names every key of the matter (in the subject if not in the text),
        so the keywords a question names always find it."""
        rng, slots = self.rng, {**matter.slots, **values}
        subject, text = rng.choice(attribute.subjects), rng.choice(templates)
        missing = [slots[key] for key in matter.kind.keys if f"{{{key}}}" not in subject + text]
        subject = subject.format_map(slots) + (f" - {' / '.join(missing)}" if missing else "")
        sender, to, cc = self.parties(matter)
        return self.composer.letter(sender, to, cc, subject, text.format_map(slots), when, slots)

    def quote(self, matter: Matter, original: Email, when: datetime) -> Email:
        """A reply to the original, or the owner forwarding it to a teammate who did not have it."""
        if self.rng.random() < 0.7:
            return self.composer.reply(original, when)
        had_it = {original.from_address, *original.to, *original.cc}
        team = [person for person in self.composer.cast.teams[matter.owner.address] if person.address not in had_it]
        return self.composer.forward(original, matter.owner, self.rng.choice(team), when)

    def write(self, matter: Matter) -> tuple[list[Email], list[Fact]]:
        """The thread's emails in time order, and the final statement of each attribute."""
        rng, slots, density = self.rng, matter.slots, self.distractors
        when = matter.start
        emails: list[Email] = []
        final: list[Fact] = []
        if kept(rng, density):
            sender, to = (matter.owner, matter.colleague) if rng.random() < 0.6 else (matter.colleague, matter.owner)
            emails.append(self.composer.letter(  # an internal heads-up: it names the counterparty in the third person
                sender, [to], [], rng.choice(matter.kind.intro_subjects).format_map(slots),
                rng.choice(matter.kind.intros).format_map(slots), when, slots,
            ))
        for attribute in matter.attributes:
            when = _later(rng, when)
            value = attribute.make(rng, when, slots)
            source = self.statement(matter, attribute, attribute.states, when, value=value)
            emails.append(source)
            if rng.random() < REVISED_SHARE * density:
                if rng.random() < STALE_QUOTE_SHARE:
                    when = _later(rng, when, 0, 4)
                    emails.append(self.quote(matter, source, when))
                when = _later(rng, when, 6)
                old, value = value, _fresh(rng, attribute, when, slots, value)
                source = self.statement(matter, attribute, attribute.revisions, when, value=value, old=old)
                emails.append(source)
            if rng.random() < QUOTED_SHARE * density:
                when = _later(rng, when, 0, 6)
                emails.append(self.quote(matter, source, when))
            final.append(Fact(attribute, value, source))
        return emails, final

    def update(self, matter: Matter, fact: Fact, after: datetime) -> Email:
        """A later revision of a fact, sent after `after` (the question's date, so never its answer)."""
        when = _later(self.rng, after, 2, 200)
        value = _fresh(self.rng, fact.attribute, when, matter.slots, fact.value)
        return self.statement(matter, fact.attribute, fact.attribute.revisions, when, value=value, old=fact.value)
