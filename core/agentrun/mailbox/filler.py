"""The bulk of a synthetic mailbox: newsletters, admin notices, chit-chat, trading chatter, other matters.

Filler is what makes search non-trivial: it shares the everyday words of the questions (meeting, price,
deal, invoice, times and dollar amounts) and the counterparties' names, and other matters in the same
inbox follow the very templates the questions are written from, with other codenames. It is generated
lazily, so a 500,000-email mailbox never sits in memory.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from agentrun.mailbox import facts, vocabulary
from agentrun.mailbox.people import Cast, Person
from agentrun.mailbox.records import Email
from agentrun.mailbox.threads import Composer, Matter, ThreadWriter

PERIOD_START = datetime(2000, 1, 3)
PERIOD_DAYS = 700  # through early December 2001, as the corpus
WORK_HOURS = (7, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 19, 21)
# What each filler draw writes, by share of draws; a matter is a thread of ~5 emails, ~1/4 of the filler.
DRAWS = {"matter": 0.07, "bulletin": 0.20, "notice": 0.11, "chat": 0.30, "trading": 0.32}
MAX_COPIES = 12  # newsletters and notices also go to this many other people at most (under the 30 filter)

_COMPANY_NAMES = [name for name, _ in vocabulary.COMPANIES]
_SLOT_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "company": lambda r: r.choice(_COMPANY_NAMES),
    "company2": lambda r: r.choice(_COMPANY_NAMES),
    "city": lambda r: r.choice(vocabulary.CITIES),
    "region": lambda r: r.choice(vocabulary.REGIONS),
    "gas_point": lambda r: r.choice(vocabulary.GAS_POINTS),
    "power_point": lambda r: r.choice(vocabulary.POWER_POINTS),
    "restaurant": lambda r: r.choice(vocabulary.RESTAURANTS),
    "room": lambda r: r.choice(vocabulary.ROOMS),
    "month": lambda r: r.choice(vocabulary.MONTHS),
    "weekday": lambda r: r.choice(vocabulary.WEEKDAYS),
    "name": lambda r: r.choice(vocabulary.FIRST_NAMES),
    "time": lambda r: f"{r.randrange(1, 13)}:{r.choice(('00', '15', '30', '45'))} {r.choice(('AM', 'PM'))}",
    "price": lambda r: f"{r.uniform(2, 10):.2f}",
    "power_price": lambda r: f"{r.uniform(20, 900):.2f}",
    "eps": lambda r: f"{r.uniform(0.1, 2.5):.2f}",
    "amount": lambda r: f"{r.randrange(100, 250000):,}",
    "notional": lambda r: f"{r.randrange(200, 4000):,}",
    "volume": lambda r: f"{r.randrange(10, 500) * 1000:,}",
    "txns": lambda r: f"{r.randrange(2000, 9000):,}",
    "cents": lambda r: str(r.randrange(2, 60)),
    "count": lambda r: str(r.randrange(2, 20)),
    "storage": lambda r: str(r.randrange(20, 120)),
    "stage": lambda r: str(r.randrange(1, 4)),
    "reserve": lambda r: str(r.randrange(1, 7)),
    "floor": lambda r: str(r.randrange(3, 50)),
    "floor2": lambda r: str(r.randrange(3, 50)),
}


class _Slots(dict[str, str]):
    """Slot values for one filler email, drawn only when a template asks for them."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        value = self[key] = _SLOT_MAKERS[key](self.rng)
        return value


def moment(rng: random.Random, latest_day: int = PERIOD_DAYS) -> datetime:
    """A send time within the corpus period: mostly weekdays, mostly office hours."""
    day = PERIOD_START + timedelta(days=rng.randrange(latest_day))
    if day.weekday() >= 5 and rng.random() < 0.85:
        day -= timedelta(days=day.weekday() - 4)
    return day.replace(hour=rng.choice(WORK_HOURS), minute=rng.randrange(60), second=rng.randrange(60))


def new_matter(rng: random.Random, cast: Cast, owner: Person, avoid: set[tuple[str, str, str]], start: datetime,
               attributes: int) -> Matter:
    """A matter in `owner`'s inbox whose (owner, codename, counterparty) is not in `avoid`.

    Questions are asked about matters whose key is unique in their inbox, so callers put each question
    matter's key in `avoid`; filler matters need not be unique among themselves.
    """
    kind = rng.choice(facts.KINDS)
    codename, (company, _) = rng.choice(vocabulary.CODENAMES), rng.choice(vocabulary.COMPANIES)
    while (owner.address, codename, company) in avoid:
        codename, (company, _) = rng.choice(vocabulary.CODENAMES), rng.choice(vocabulary.COMPANIES)
    contact, colleague = rng.choice(cast.contacts[company]), rng.choice(cast.teams[owner.address])
    commodity = vocabulary.COMMODITIES[rng.choice(("gas", "gas", "power"))]
    slots = {
        "codename": codename, "company": company, "contact": contact.name, "contact_first": contact.first,
        "colleague_first": colleague.first, "owner_first": owner.first, "city": rng.choice(vocabulary.CITIES),
        "commodity": str(commodity["commodity"]), "price_unit": str(commodity["price_unit"]),
        "volume_unit": str(commodity["volume_unit"]),
    }
    chosen = tuple(rng.sample(kind.attributes, min(attributes, len(kind.attributes))))
    return Matter(kind, owner, contact, colleague, slots, chosen, start)


class Filler:
    """An endless, seeded stream of filler emails across the owners' inboxes (heavier inboxes get more)."""

    def __init__(
        self, rng: random.Random, cast: Cast, composer: Composer, questioned: set[tuple[str, str, str]]
    ) -> None:
        self.rng, self.cast, self.composer, self.questioned = rng, cast, composer, questioned
        self.threads = ThreadWriter(composer)
        self.owner_weights = list(itertools.accumulate(rng.uniform(0.5, 2.0) for _ in cast.owners))
        self.draws, self.draw_weights = list(DRAWS), list(itertools.accumulate(DRAWS.values()))
        self.everyone = [p.address for p in cast.owners] + [p.address for t in cast.teams.values() for p in t]

    def emails(self, count: int) -> Iterator[Email]:
        return itertools.islice(itertools.chain.from_iterable(self._batches()), count)

    def _batches(self) -> Iterator[list[Email]]:
        rng = self.rng
        while True:
            owner = rng.choices(self.cast.owners, cum_weights=self.owner_weights)[0]
            draw = rng.choices(self.draws, cum_weights=self.draw_weights)[0]
            if draw == "matter":
                start = moment(rng, PERIOD_DAYS - 30)
                matter = new_matter(rng, self.cast, owner, self.questioned, start, rng.randrange(1, 4))
                yield self.threads.write(matter)[0]
            elif draw == "bulletin":
                yield [self._bulletin(owner, rng.choice(vocabulary.NEWS_SENDERS))]
            elif draw == "notice":
                yield [self._notice(owner)]
            elif draw == "chat":
                yield [self._conversation(owner, vocabulary.CHAT_SUBJECTS, vocabulary.CHAT_SENTENCES, 3)]
            else:
                yield [self._conversation(owner, vocabulary.TRADING_SUBJECTS, vocabulary.TRADING_SENTENCES, 4)]

    def _copies(self) -> list[str]:
        return self.rng.sample(self.everyone, self.rng.randrange(0, MAX_COPIES + 1))

    def _bulletin(self, owner: Person, sender: str) -> Email:
        rng, slots = self.rng, _Slots(self.rng)
        when = moment(rng)
        stories = rng.sample(vocabulary.NEWS_SENTENCES, rng.randrange(3, 9))
        subject = f"{rng.choice(vocabulary.NEWS_SUBJECTS)} - {when:%m/%d/%y}"
        body = f"{subject}\n\n" + "\n\n".join(story.format_map(slots) for story in stories)
        return self.composer.email(sender, [owner.address], subject, body, when, bcc=self._copies())

    def _notice(self, owner: Person) -> Email:
        subject, text = self.rng.choice(vocabulary.ADMIN_MESSAGES)
        body = text.format_map(_Slots(self.rng))
        sender = self.rng.choice(vocabulary.ADMIN_SENDERS)
        return self.composer.email(sender, [owner.address], subject, body, moment(self.rng), bcc=self._copies())

    def _conversation(self, owner: Person, subjects: list[str], sentences: list[str], most: int) -> Email:
        """A few lines between the owner and a teammate (or another owner), sometimes replying to a line."""
        rng, slots = self.rng, _Slots(self.rng)
        team = self.cast.teams[owner.address]
        other = rng.choice(self.cast.owners) if rng.random() < 0.2 else rng.choice(team)
        other = rng.choice(team) if other == owner else other
        sender, receiver = (owner, other) if rng.random() < 0.5 else (other, owner)
        lines = " ".join(line.format_map(slots) for line in rng.sample(sentences, rng.randrange(1, most)))
        body = f"{receiver.first},\n\n{lines}\n\n{sender.first}"
        subject = rng.choice(subjects)
        if rng.random() < 0.25:
            subject = f"RE: {subject}"
            earlier = rng.choice(sentences).format_map(slots)
            body += f"\n\n -----Original Message-----\nFrom: \t{receiver.filed_as}\n\n{earlier}"
        return self.composer.email(sender.address, [receiver.address], subject, body, moment(rng))
