"""What the scripted policies know: the dataset's scenarios, and for each one a plan a good agent follows.

A plan is worked out once per scenario with the mailbox at hand, the way a competent agent would act:
search with words the question shares with the source email, and if that search does not surface the
source, try other words (up to `MAX_SEARCHES_PER_SOURCE` searches); then read every source and answer.
Every search is checked against the real index, so the oracle's searches find what it reads whenever a
reasonable search can.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentrun import storage
from agentrun.environment.judge import DeterministicJudge
from agentrun.mailbox import queries, schema, writer
from agentrun.mailbox.records import Scenario
from agentrun.scripted.policies import ANSWER_TOOL, Call, Plan
from agentrun.wire import text_of

MAX_SEARCHES_PER_SOURCE = 3
KEYWORDS_PER_SEARCH = 3
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "the and for with that this from what when where which who whom whose why how was were are is did "
    "does do has have had will would can could should about into onto over under after before than then "
    "there their they them our ours your yours his her hers its it's not but any all each per via "
    "email emails sent send message messages mail inbox".split()
)


class UnknownScenario(LookupError):
    """The conversation's question is not one of the dataset's scenarios."""


def _words(text: str) -> list[str]:
    """Distinct searchable words in order, spelled as in `text` (the search ignores case, and a copied
    word is easier for a small model than a lowercased one): no stopwords, no bare numbers, 3+ characters."""
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        folded = word.lower()
        if len(word) >= 3 and not word.isdigit() and folded not in _STOPWORDS:
            seen.setdefault(folded, word)
    return list(seen.values())


def keyword_candidates(question: str, email: queries.EmailView) -> list[list[str]]:
    """Keyword lists to try, most specific first: question words in the subject, in the body, then the
    subject's own words."""
    asked = _words(question)
    subject = _words(email.subject)
    in_subject = {w.lower() for w in subject}
    in_body = {w.lower() for w in _words(email.body)}
    candidates = [
        [w for w in asked if w.lower() in in_subject][:KEYWORDS_PER_SEARCH],
        [w for w in asked if w.lower() in in_body][:KEYWORDS_PER_SEARCH],
        subject[:KEYWORDS_PER_SEARCH],
    ]
    unique: list[list[str]] = []
    for keywords in candidates:
        if keywords and keywords not in unique:
            unique.append(keywords)
    return unique


class Knowledge:
    """The scenarios of one dataset directory, looked up by question, with their plans (cached)."""

    def __init__(self, dataset_dir: Path, *, min_turns: int | None = None) -> None:
        self.mailbox = queries.Mailbox(dataset_dir / schema.EMAILS_DB)
        self.scenarios = writer.load_scenarios(storage.scenarios_file(dataset_dir))
        self._min_turns = min_turns
        self._by_question: dict[str, list[Scenario]] = {}
        for scenario in self.scenarios:
            self._by_question.setdefault(scenario.question, []).append(scenario)
        self._plans: dict[int, Plan] = {}

    def close(self) -> None:
        self.mailbox.close()

    def plan_for(self, messages: Sequence[Mapping[str, Any]]) -> Plan:
        """The plan of the scenario this conversation asks about; raises UnknownScenario."""
        scenario = self.scenario_for(messages)
        plan = self._plans.get(scenario.id)
        if plan is None:
            plan = self._plans[scenario.id] = self._plan(scenario)
        return plan

    def scenario_for(self, messages: Sequence[Mapping[str, Any]]) -> Scenario:
        """The scenario whose question is the first user message (the inbox named in the system prompt
        decides between scenarios that ask the same question of different inboxes)."""
        question = next((text_of(m.get("content")) for m in messages if m.get("role") == "user"), None)
        candidates = self._by_question.get(question or "", [])
        system = " ".join(text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
        matching = [s for s in candidates if s.inbox_address in system] or candidates
        if not matching:
            raise UnknownScenario(f"no scenario of the scripted server's dataset asks {(question or '')[:120]!r}")
        return matching[0]

    def _plan(self, scenario: Scenario) -> Plan:
        """Searches that surface every source, then a read of each source, then the answer. A source no
        search surfaces is read all the same (the oracle knows its id): only the found-email credit is lost."""
        searches: list[Call] = []
        found: set[str] = set()
        for source in scenario.message_ids:
            if source not in found:
                searches += self._searches_for(scenario, source, found)
        if self._min_turns is not None:
            searches += _padding(searches, self._min_turns - len(searches) - len(scenario.message_ids) - 1)
        reads = [Call("read_email", {"message_id": source}) for source in scenario.message_ids]
        answer = Call(ANSWER_TOOL, {"answer": scenario.answer, "sources": list(scenario.message_ids)})
        return Plan(scenario, (*searches, *reads, answer), self._decoy(scenario))

    def _searches_for(self, scenario: Scenario, source: str, found: set[str]) -> list[Call]:
        """Searches until one surfaces `source` (all tried ones are kept: the agent did try them)."""
        email = self.mailbox.read(source, scenario.inbox_address)
        if email is None:
            return []
        tried = []
        for keywords in keyword_candidates(scenario.question, email)[:MAX_SEARCHES_PER_SOURCE]:
            tried.append(Call("search_emails", {"keywords": keywords}))
            hits = self.mailbox.search(
                scenario.inbox_address, keywords, sent_before=scenario.query_date.isoformat(), max_results=10
            )
            found.update(hit.message_id for hit in hits)
            if source in found:
                break
        return tried

    def _decoy(self, scenario: Scenario) -> str:
        """Another scenario's answer that the deterministic judge rejects for this one."""
        for other in self.scenarios:
            if not DeterministicJudge.matches(scenario.answer, other.answer):
                return other.answer
        return "nothing about it"


def _padding(searches: list[Call], count: int) -> list[Call]:
    """`count` extra searches, one keyword of the earlier searches each, to stretch a plan's length."""
    words = [w for call in searches for w in call.arguments["keywords"]] or ["update"]
    return [Call("search_emails", {"keywords": [words[i % len(words)]]}) for i in range(max(count, 0))]
