"""Who writes the synthetic mailbox: the inbox owners, their teams, and contacts at counterparties.

Owners are the inboxes questions are asked about. Each owner has a team of colleagues who are not inboxes
themselves, so a matter's emails (owner, colleague, outside contact) land in exactly one inbox and a
test question's facts never leak into a train inbox.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentrun.mailbox import vocabulary

DOMAIN = "enron.com"
TEAM_SIZE = 8
CONTACTS_PER_COMPANY = 6


@dataclass(frozen=True)
class Person:
    name: str
    address: str

    @property
    def first(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def filed_as(self) -> str:
        """The name as Outlook printed it in quoted headers ("Whitfield, Karen")."""
        first, _, last = self.name.partition(" ")
        return f"{last}, {first}"


@dataclass(frozen=True)
class Cast:
    owners: list[Person]
    teams: dict[str, list[Person]]  # owner address -> colleagues
    contacts: dict[str, list[Person]]  # company name -> people there
    by_address: dict[str, Person]


def make_cast(rng: random.Random, inboxes: int) -> Cast:
    """Draw unique names for `inboxes` owners, their teams and every counterparty's contacts."""
    employed, companies = inboxes * (1 + TEAM_SIZE), vocabulary.COMPANIES
    first_names, last_names = vocabulary.FIRST_NAMES, vocabulary.LAST_NAMES
    picks = rng.sample(range(len(first_names) * len(last_names)), employed + len(companies) * CONTACTS_PER_COMPANY)
    names = [(first_names[i % len(first_names)], last_names[i // len(first_names)]) for i in picks]
    employees = [Person(f"{first} {last}", f"{first}.{last}@{DOMAIN}".lower()) for first, last in names[:employed]]
    owners = employees[:inboxes]
    teams = {
        owner.address: employees[inboxes + i * TEAM_SIZE : inboxes + (i + 1) * TEAM_SIZE]
        for i, owner in enumerate(owners)
    }
    contacts = {}
    for i, (company, domain) in enumerate(companies):
        start = employed + i * CONTACTS_PER_COMPANY
        group = names[start : start + CONTACTS_PER_COMPANY]
        contacts[company] = [Person(f"{first} {last}", f"{first[0]}{last}@{domain}".lower()) for first, last in group]
    everyone = employees + [person for people in contacts.values() for person in people]
    return Cast(owners, teams, contacts, {person.address: person for person in everyone})
