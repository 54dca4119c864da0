"""The kinds of business matter the synthetic mailbox talks about, and the facts a question can ask for.

A matter (a deal, a meeting, a trip...) has a codename and a counterparty; each of its attributes is a
fact stated in one email (the source a question cites), possibly revised later ("moved to 4:30 PM").
Values are short spans copied verbatim into the email, so a normalised-match judge can grade answers.
Templates use the matter's slots: codename, company, contact, contact_first, colleague_first,
owner_first, commodity, price_unit, volume_unit, city; attribute templates add value and old.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentrun.mailbox import vocabulary

ValueMaker = Callable[[random.Random, datetime, dict[str, str]], str]


@dataclass(frozen=True)
class Attribute:
    """One fact of a matter: how to make a value, state it, revise it, and ask for it."""

    name: str
    make: ValueMaker
    subjects: tuple[str, ...]  # subject lines of the email stating the fact
    states: tuple[str, ...]  # sentences stating {value}
    revisions: tuple[str, ...]  # sentences replacing {old} with {value}
    questions: tuple[tuple[str, float], ...]  # (question, how_realistic)


@dataclass(frozen=True)
class Kind:
    name: str
    intro_subjects: tuple[str, ...]
    intros: tuple[str, ...]
    attributes: tuple[Attribute, ...]
    keys: tuple[str, ...] = ("codename", "company")  # slots a question may name, so every fact email names them


def _time(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    hour, minute = rng.randrange(8, 18), rng.choice((0, 0, 15, 30, 30, 45))
    return f"{(hour - 1) % 12 + 1}:{minute:02d} {'AM' if hour < 12 else 'PM'}"


def _evening(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"{rng.choice((6, 6, 7, 7, 7, 8))}:{rng.choice(('00', '15', '30', '30', '45'))} PM"


def _weekday_after(rng: random.Random, when: datetime) -> datetime:
    day = when + timedelta(days=rng.randrange(2, 22))
    return day + timedelta(days=7 - day.weekday()) if day.weekday() >= 5 else day


def _day(rng: random.Random, when: datetime, _slots: dict[str, str]) -> str:
    day = _weekday_after(rng, when)
    return f"{day:%A, %B} {day.day}"


def _date(rng: random.Random, when: datetime, _slots: dict[str, str]) -> str:
    day = _weekday_after(rng, when + timedelta(days=rng.randrange(0, 60)))
    return f"{day:%B} {day.day}, {day.year}"


def _first_of_month(rng: random.Random, when: datetime, _slots: dict[str, str]) -> str:
    months = when.year * 12 + when.month - 1 + rng.randrange(1, 4)
    return f"{datetime(months // 12, months % 12 + 1, 1):%B} 1, {months // 12}"


def _price(rng: random.Random, _when: datetime, slots: dict[str, str]) -> str:
    return f"${rng.uniform(2.1, 9.9):.2f}" if slots["commodity"] == "gas" else f"${rng.uniform(24, 260):.2f}"


def _volume(rng: random.Random, _when: datetime, slots: dict[str, str]) -> str:
    if slots["commodity"] == "gas":
        return f"{rng.randrange(5, 120) * 1000:,} MMBtu/day"
    return f"{rng.choice((25, 50, 75, 100, 150, 200, 250, 300))} MW"


def _digits(low: int, high: int) -> ValueMaker:
    return lambda rng, _when, _slots: str(rng.randrange(low, high))


def _choice(options: list[str]) -> ValueMaker:
    return lambda rng, _when, _slots: rng.choice(options)


def _point(rng: random.Random, _when: datetime, slots: dict[str, str]) -> str:
    return rng.choice(vocabulary.COMMODITIES[slots["commodity"]]["points"])


def _person(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"{rng.choice(vocabulary.FIRST_NAMES)} {rng.choice(vocabulary.LAST_NAMES)}"


def _flight(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"{rng.choice(vocabulary.AIRLINES)} {rng.randrange(100, 3000)}"


def _confirmation(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return f"{rng.choice(letters)}{rng.choice(letters)}{rng.randrange(10000, 99999)}"


def _dial_in(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"1-{rng.choice(('800', '888', '877'))}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"


def _amount(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"${rng.randrange(1500, 950000):,}.{rng.randrange(100):02d}"


def _invoice_number(rng: random.Random, when: datetime, _slots: dict[str, str]) -> str:
    return f"{rng.choice(('INV', 'EN', 'A'))}-{when.year % 100:02d}{rng.randrange(1000, 9999)}"


def _budget(rng: random.Random, _when: datetime, _slots: dict[str, str]) -> str:
    return f"${rng.randrange(4, 96) / 10:.1f} million"


DEAL = Kind(
    "deal",
    ("{codename} - {company} {commodity} deal", "{company} {commodity} deal ({codename})", "New deal: {codename}"),
    (
        "We're putting together the {codename} {commodity} deal with {company}. {contact} is running it on "
        "their side and I'd like you involved.",
        "{company} called about a {commodity} deal we're calling {codename}. Terms are still being worked out, "
        "more to follow.",
        "Kicking off {codename}: a {commodity} transaction with {company}. I'll send terms as they firm up.",
    ),
    (
        Attribute(
            "price", _price,
            ("{codename} pricing", "RE: {codename} price", "{company} price on {codename}"),
            (
                "We agreed with {company} on {value} per {price_unit} for the {codename} deal.",
                "{contact_first} confirmed {value}/{price_unit} on {codename}.",
                "Price on the {codename} deal is {value} per {price_unit}, fixed for the term.",
            ),
            (
                "{company} came back on {codename} and we settled at {value} per {price_unit}, "
                "not the {old} we discussed.",
                "Correction on {codename}: the price is {value}/{price_unit} (I had {old} in my last note).",
                "We re-traded {codename} with {company} this morning - new price is {value} per {price_unit}.",
            ),
            (
                ("What price per {price_unit} did we agree with {company} on the {codename} deal?", 0.9),
                ("What's the final price on the {codename} {commodity} deal with {company}?", 0.85),
                ("At what price did the {company} {codename} deal get done?", 0.75),
            ),
        ),
        Attribute(
            "volume", _volume,
            ("{codename} volumes", "RE: {codename} volume", "{company} {codename} quantity"),
            (
                "The {codename} deal with {company} is for {value}.",
                "{company} wants {value} on {codename}.",
                "Volume on {codename} is set at {value} for the full term.",
            ),
            (
                "{company} bumped the {codename} volume from {old} to {value}.",
                "We cut {codename} back to {value} (was {old}) after talking to {contact_first}.",
            ),
            (
                ("What volume did we agree on for the {codename} deal with {company}?", 0.85),
                ("How much {commodity} is the {company} {codename} deal for?", 0.8),
            ),
        ),
        Attribute(
            "deal_number", _digits(100000, 999999),
            ("{codename} deal number", "{codename} in Sitara", "RE: {company} {codename} ticket"),
            (
                "{codename} is in Sitara as deal {value}.",
                "The {company} {codename} deal was entered under deal number {value}.",
                "Deal number for {codename} is {value} - please reference it on the confirm.",
            ),
            (
                "Sorry, wrong number on {codename} - the deal was re-entered as {value} (not {old}).",
                "Risk killed deal {old}; {codename} now lives under deal {value}.",
            ),
            (
                ("What's the deal number for the {codename} trade with {company}?", 0.9),
                ("Which Sitara deal number is the {company} {codename} deal under?", 0.8),
            ),
        ),
        Attribute(
            "start_date", _first_of_month,
            ("{codename} start date", "RE: {codename} flow date", "{company} {codename} term"),
            ("Flow on {codename} starts {value}.", "{company} confirmed {codename} begins {value}."),
            (
                "{company} asked to push the {codename} start from {old} to {value}.",
                "{codename} start moved to {value}; {old} won't work for {company}.",
            ),
            (
                ("When does the {codename} deal with {company} start?", 0.85),
                ("What's the start date on the {company} {codename} deal?", 0.85),
            ),
        ),
        Attribute(
            "delivery_point", _point,
            ("{codename} delivery", "RE: {codename} delivery point"),
            (
                "Delivery for {codename} is at {value}.",
                "{company} will take the {commodity} at {value} on {codename}.",
            ),
            ("We switched the {codename} delivery point from {old} to {value} at {company}'s request.",),
            (
                ("Where is the delivery point for the {codename} deal with {company}?", 0.8),
                ("At which point does {company} take delivery on {codename}?", 0.7),
            ),
        ),
        Attribute(
            "confirm_contact", _person,
            ("{codename} confirm", "RE: {company} confirm for {codename}"),
            (
                "{value} at {company} is handling the confirm for {codename}.",
                "Send the {codename} confirm to {value} at {company}.",
            ),
            ("{old} left {company}; {value} is now handling the {codename} confirm.",),
            (
                ("Who at {company} is handling the confirm for {codename}?", 0.8),
                ("Who should the {codename} confirm go to at {company}?", 0.75),
            ),
        ),
    ),
)

MEETING = Kind(
    "meeting",
    ("{codename} meeting with {company}", "Meeting: {company} / {codename}", "{codename} - {company} visit"),
    (
        "{company} wants to sit down with us on {codename}. I'll send details once we have a time and a room.",
        "We need to get {contact} and the {company} team in to go over {codename}. Working on logistics now.",
    ),
    (
        Attribute(
            "time", _time,
            ("{codename} - time", "RE: {codename} meeting", "{company} / {codename} timing"),
            (
                "The {codename} meeting with {company} is at {value}.",
                "{contact_first} confirmed {value} for the {codename} meeting.",
                "Let's plan on {value} for {codename} with the {company} folks.",
            ),
            (
                "Change of plans - the {codename} meeting with {company} has moved from {old} to {value}.",
                "{contact_first} asked to push {codename} to {value}. Please update your calendars.",
                "{codename} with {company} is now at {value}, not {old}.",
            ),
            (
                ("What time is my {codename} meeting with {company}?", 0.9),
                ("When does the {codename} meeting with {company} start?", 0.85),
                ("What time did the {company} {codename} meeting end up at?", 0.7),
            ),
        ),
        Attribute(
            "day", _day,
            ("{codename} - date", "RE: {codename} meeting date", "{company} {codename} scheduling"),
            (
                "The {codename} meeting with {company} is on {value}.",
                "We're set with {company} for {value} to go over {codename}.",
            ),
            (
                "{company} can't make it, so {codename} moves from {old} to {value}.",
                "New date for the {codename} meeting: {value}. {old} is off.",
            ),
            (
                ("What day is the {codename} meeting with {company}?", 0.85),
                ("Which day are we meeting {company} about {codename}?", 0.8),
            ),
        ),
        Attribute(
            "room", _choice(vocabulary.ROOMS),
            ("{codename} - room", "RE: room for {codename}"),
            (
                "We have {value} booked for the {codename} meeting with {company}.",
                "{codename} meeting will be in {value}.",
            ),
            ("Room change for {codename}: we're in {value} now instead of {old}.",),
            (
                ("Which room is the {codename} meeting with {company} in?", 0.85),
                ("Where is the {company} {codename} meeting being held?", 0.8),
            ),
        ),
        Attribute(
            "attendees", _digits(3, 25),
            ("{codename} attendees", "RE: {company} headcount for {codename}"),
            ("{company} is bringing {value} people to the {codename} meeting.",),
            ("{company} now has {value} people coming to {codename} (it was {old}).",),
            (("How many people is {company} bringing to the {codename} meeting?", 0.75),),
        ),
    ),
)

TRIP = Kind(
    "trip",
    ("{city} trip - {codename}", "Travel to {city} for {codename}"),
    (
        "I'm heading to {city} to meet with {company} on {codename}. I'll send the itinerary when it's booked.",
        "{company} wants us in {city} for the {codename} meetings. Travel is booking it now.",
    ),
    (
        Attribute(
            "flight", _flight,
            ("{city} itinerary", "RE: {codename} travel", "Flight to {city}"),
            (
                "You're booked on {value} to {city} for the {codename} meetings.",
                "Travel has us on {value} to {city} for {codename}.",
            ),
            ("We got rebooked from {old} to {value} for the {city} trip ({codename}).",),
            (
                ("What flight am I on to {city} for the {codename} meetings with {company}?", 0.85),
                ("Which flight is booked for the {city} trip to see {company} about {codename}?", 0.8),
            ),
        ),
        Attribute(
            "hotel", _choice(vocabulary.HOTELS),
            ("{city} hotel", "RE: {codename} hotel"),
            ("Hotel for the {city} {codename} trip is the {value}.",),
            ("The {old} was full, so we're at the {value} in {city} for {codename}.",),
            (("Which hotel am I staying at in {city} for the {codename} trip?", 0.85),),
        ),
        Attribute(
            "confirmation", _confirmation,
            ("{city} hotel confirmation", "RE: {codename} booking"),
            ("The hotel confirmation number for {city} ({codename}) is {value}.",),
            ("New confirmation number for the {city} hotel is {value}; {old} was cancelled.",),
            (("What's the hotel confirmation number for my {city} trip for {codename}?", 0.8),),
        ),
        Attribute(
            "departure", _time,
            ("{city} flight time", "RE: {codename} departure"),
            ("The {city} flight for {codename} leaves at {value}.",),
            ("Departure for {city} ({codename}) changed from {old} to {value}.",),
            (("What time does my flight to {city} for the {codename} trip leave?", 0.85),),
        ),
    ),
    ("codename", "company", "city"),
)

CALL = Kind(
    "call",
    ("{codename} conference call", "Call with {company} re {codename}"),
    ("Let's get {company} on the phone to talk through {codename}. Dial-in details to follow.",),
    (
        Attribute(
            "dial_in", _dial_in,
            ("{codename} call - dial-in", "RE: {codename} bridge"),
            ("Dial-in for the {codename} call with {company}: {value}.",),
            ("We're using a different bridge for {codename}: dial {value} instead of {old}.",),
            (("What's the dial-in number for the {codename} call with {company}?", 0.85),),
        ),
        Attribute(
            "passcode", _digits(100000, 999999),
            ("{codename} call passcode", "RE: {codename} bridge"),
            ("Passcode for the {codename} call is {value}.", "Use passcode {value} for the {company} {codename} call."),
            ("The {codename} bridge passcode changed to {value} - {old} won't work anymore.",),
            (
                ("What's the passcode for the {codename} conference call with {company}?", 0.9),
                ("Which passcode do I use for the {company} call on {codename}?", 0.8),
            ),
        ),
        Attribute(
            "time", _time,
            ("{codename} call time", "RE: {codename} call"),
            ("The {codename} call with {company} is at {value} Central.", "Let's do the {codename} call at {value}."),
            ("Moving the {codename} call with {company} to {value} (from {old}).",),
            (("What time is the {codename} call with {company}?", 0.9),),
        ),
    ),
)

INVOICE = Kind(
    "invoice",
    ("{company} invoice - {codename}", "{codename} billing"),
    ("{company} sent over their invoice for the {codename} work. I'm checking it against the contract now.",),
    (
        Attribute(
            "amount", _amount,
            ("{codename} invoice", "RE: {company} invoice"),
            (
                "{company}'s invoice for {codename} comes to {value}.",
                "The {codename} invoice from {company} is {value}.",
            ),
            ("{company} sent a revised {codename} invoice for {value}, replacing the {old} one.",),
            (
                ("How much is the {company} invoice for {codename}?", 0.85),
                ("What's the total on the {codename} invoice from {company}?", 0.85),
            ),
        ),
        Attribute(
            "invoice_number", _invoice_number,
            ("{codename} invoice number", "RE: {company} invoice"),
            ("The {company} invoice number for {codename} is {value}.",),
            ("{company} reissued the {codename} invoice as {value} (was {old}).",),
            (("What's the invoice number on the {company} invoice for {codename}?", 0.75),),
        ),
        Attribute(
            "due_date", _date,
            ("{codename} payment", "RE: {company} payment terms"),
            ("Payment on the {codename} invoice is due {value}.",),
            ("{company} agreed to extend the {codename} payment date from {old} to {value}.",),
            (("When is payment due on the {company} invoice for {codename}?", 0.85),),
        ),
    ),
)

EVENT = Kind(
    "event",
    ("{codename} closing dinner", "{codename} dinner with {company}"),
    ("We should celebrate closing {codename} with the {company} team. I'll find a place.",),
    (
        Attribute(
            "venue", _choice(vocabulary.RESTAURANTS),
            ("{codename} dinner", "RE: dinner for {codename}"),
            ("Dinner for {codename} will be at {value}.", "I booked {value} for the {codename} dinner with {company}."),
            ("Switched the {codename} dinner from {old} to {value}.",),
            (
                ("Where is the {codename} dinner with {company}?", 0.85),
                ("Which restaurant is hosting the {company} {codename} dinner?", 0.75),
            ),
        ),
        Attribute(
            "time", _evening,
            ("{codename} dinner time", "RE: {codename} dinner"),
            ("{codename} dinner reservation is at {value}.",),
            ("The {codename} dinner is now at {value} instead of {old}.",),
            (("What time is the {codename} dinner with {company}?", 0.85),),
        ),
        Attribute(
            "headcount", _digits(4, 40),
            ("{codename} dinner headcount", "RE: {codename} dinner count"),
            ("We have {value} people for the {codename} dinner.",),
            ("Headcount for the {codename} dinner is up to {value} from {old} with the {company} folks.",),
            (("How many people are coming to the {codename} dinner with {company}?", 0.75),),
        ),
    ),
)

PROJECT = Kind(
    "project",
    ("Project {codename}", "{codename} kickoff"),
    ("We're standing up Project {codename} with {company} as our partner. {colleague_first} and I will run it.",),
    (
        Attribute(
            "budget", _budget,
            ("{codename} budget", "RE: Project {codename} budget"),
            ("The budget for Project {codename} is {value}.",),
            ("Budget on {codename} was revised from {old} to {value}.",),
            (("What's the budget for Project {codename} with {company}?", 0.8),),
        ),
        Attribute(
            "deadline", _date,
            ("{codename} deadline", "RE: {codename} schedule"),
            ("{company} needs the {codename} deliverables by {value}.",),
            ("The {codename} deadline slipped from {old} to {value}.",),
            (("What's the deadline for the {codename} deliverables to {company}?", 0.8),),
        ),
        Attribute(
            "lead", _person,
            ("{codename} staffing", "RE: Project {codename} lead"),
            ("{value} will lead Project {codename} on our side.",),
            ("{old} is moving to London, so {value} is taking over {codename}.",),
            (("Who is leading Project {codename} with {company}?", 0.8),),
        ),
    ),
)

KINDS = (DEAL, MEETING, TRIP, CALL, INVOICE, EVENT, PROJECT)
