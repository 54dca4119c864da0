"""One episode as a plain-text transcript a person reads: what the agent was asked, did, saw and answered.

Pure: a `Trajectory` (and its `Scenario` when known, for the reference answer, which a trajectory does not
carry) in, text out, so `agentrun show`, `agentrun eval --show` and the tests share one rendering.
Whatever a model or a mailbox wrote is cut to a few lines, with a marker saying how much was left out,
and made printable: lone surrogates and control characters are escaped, so a transcript can neither
crash the terminal's encoder nor move its cursor. Every line fits in `Limits.width` columns.
"""

from __future__ import annotations

import itertools
import json
import re
import textwrap
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentrun.mailbox.records import Scenario
from agentrun.rollout.trajectory import EpisodeRecord, RewardRecord, ToolCallRecord, Trajectory, Turn

LABEL = 12  # width of the label column of the question and ending sections
MARK = "*"  # before a message id that is one of the scenario's reference emails
_HIGHLIGHT = re.compile(r"</?b>")  # the search snippet's match markers


@dataclass(frozen=True)
class Limits:
    """How much of each long text is shown; search hits and email headers are always one line each."""

    width: int = 100
    text_lines: int = 8  # of an assistant's text, an email's body, a tool call's arguments, an unknown result
    hits: int = 10  # search results listed


FULL = Limits(text_lines=10**9, hits=10**9)  # nothing cut but lines wider than the terminal


def render(trajectory: Trajectory, scenario: Scenario | None = None, limits: Limits = Limits()) -> str:
    """The transcript: a header, the question, each turn with its tool calls and their results, then the
    answer beside the reference, the judgement and the reward's parts."""
    references = frozenset(scenario.message_ids) if scenario else frozenset()
    lines = _header(trajectory, limits)
    lines += _labelled("question", trajectory.question, limits)
    if scenario is not None:
        asked = f"{scenario.inbox_address}, asked on {scenario.query_date.date().isoformat()}"
        lines += _labelled("inbox", asked, limits)
    results = {m.get("tool_call_id"): m.get("content") for m in trajectory.messages if m.get("role") == "tool"}
    for number, turn in enumerate(trajectory.turns, start=1):
        lines += _turn(number, turn, trajectory.model, results, references, limits)
    lines += _ending(trajectory, scenario, references, limits)
    return "\n".join(line.rstrip() for line in lines)


def printable(text: str) -> str:
    """The text with line ends normalised and every control character, lone surrogate and line or
    paragraph separator written as its escape (`\\x1b`, `\\ud83d`); tabs become spaces."""
    text = text.replace("\r\n", "\n").expandtabs(4)
    return "".join(ch if ch == "\n" or unicodedata.category(ch) not in _ESCAPED else ascii(ch)[1:-1] for ch in text)


_ESCAPED = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _header(trajectory: Trajectory, limits: Limits) -> list[str]:
    reward = trajectory.reward
    facts = [f"scenario {trajectory.scenario_id}", f"group {trajectory.group_index}",
             f"sample {trajectory.sample_index}", _cut(printable(trajectory.model), 40),
             f"{reward.outcome}, reward {reward.total:.3f}" if reward else "failed"]
    turns = len(trajectory.turns)
    facts += [f"{turns} turn" + ("s" if turns != 1 else ""), f"{trajectory.timings.wall_seconds:.2f} s"]
    rule = "=" * limits.width
    return [rule, _cut(" | ".join(facts), limits.width), rule]


def _turn(number: int, turn: Turn, model: str, results: dict[Any, Any], references: frozenset[str],
          limits: Limits) -> list[str]:
    facts = [turn.finish_reason]
    if turn.usage is not None:
        facts.append(f"{turn.usage.completion_tokens} tokens")
    facts.append(f"{turn.latency_seconds:.2f} s")
    if turn.retries:
        facts.append(f"{turn.retries} retries")
    if turn.model != model:
        facts.append(f"served by {printable(turn.model)}")
    title = f"-- turn {number} ({', '.join(facts)}) "
    lines = ["", _cut(title, limits.width).ljust(limits.width, "-")]
    if turn.content and turn.content.strip():
        lines += _block(turn.content.strip(), "  ", limits)
    for call in turn.tool_calls:
        lines += _call(call, limits)
        if call.id in results:
            lines += _result(results[call.id], references, limits)
        else:
            lines.append("    (not executed: an earlier call of this turn ended the episode)")
    if not turn.tool_calls:
        lines.append("  (no tool call in this turn)")
    return lines


def _call(call: ToolCallRecord, limits: Limits) -> list[str]:
    """`name(key=value, ...)` with JSON values, one argument per line when that does not fit on one."""
    name = printable(call.name)
    try:
        arguments = json.loads(call.arguments)
    except (ValueError, RecursionError):
        arguments = None
    if not isinstance(arguments, dict):
        return [_cut(f"  {name} with arguments that are not a JSON object:", limits.width),
                *_block(call.arguments, "      ", limits)]
    # Escaped only once cut (by `_block`, or here when short): a megabyte argument costs no more to show.
    parts = [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items()]
    one_line = f"  {name}({', '.join(parts)})"
    if len(one_line) <= limits.width:
        return [_cut(printable(one_line), limits.width)]
    lines = [f"  {name}("]
    for part in parts:
        lines += _block(part + ",", "      ", limits)
    return [*lines, "  )"]


def _result(content: Any, references: frozenset[str], limits: Limits) -> list[str]:
    """A tool message by the shape of its JSON: search hits, an email, an error, a status, or raw text."""
    try:
        result = json.loads(content) if isinstance(content, str) else content
    except (ValueError, RecursionError):
        result = content
    if isinstance(result, list) and all(isinstance(hit, dict) and "message_id" in hit for hit in result):
        return _hits(result, references, limits)
    if isinstance(result, dict) and {"message_id", "body"} <= result.keys():
        return _email(result, references, limits)
    if isinstance(result, dict) and set(result) == {"error"}:
        return _block(f"error: {result['error']}", "    -> ", limits, indent="       ")
    if isinstance(result, dict) and set(result) == {"status"}:
        return [_cut(f"    -> {printable(str(result['status']))}", limits.width)]
    return _block(content if isinstance(content, str) else json.dumps(content), "    -> ", limits, indent="       ")


def _hits(hits: list[dict[str, Any]], references: frozenset[str], limits: Limits) -> list[str]:
    if not hits:
        return ["    -> no results"]
    count = f"{len(hits)} result" + ("s" if len(hits) != 1 else "")
    lines = [f"    -> {count}" + (f" ({MARK} = a reference email)" if references else "")]
    for hit in hits[:limits.hits]:
        snippet = " ".join(_HIGHLIGHT.sub("", str(hit.get("snippet", ""))).split())
        mark = MARK if _is_reference(hit["message_id"], references) else " "
        lines.append(_cut(f"     {mark} {printable(str(hit['message_id']))}  {printable(snippet)}", limits.width))
    if len(hits) > limits.hits:
        lines.append(f"       [... {len(hits) - limits.hits} more results]")
    return lines


def _email(email: dict[str, Any], references: frozenset[str], limits: Limits) -> list[str]:
    recipients = "; ".join(f"{kind} {', '.join(map(str, email[kind]))}" for kind in ("to", "cc", "bcc")
                           if email.get(kind))
    headers = [f"email {_marked(email['message_id'], references)}", f"subject: {email.get('subject', '')}",
               f"from: {email.get('from_address', '')}" + (f"; {recipients}" if recipients else ""),
               f"date: {email.get('date', '')}"]
    lines = [_cut(f"    -> {printable(headers[0])}", limits.width)]
    lines += [_cut(f"       {printable(header)}", limits.width) for header in headers[1:]]
    return lines + _block(str(email["body"]).strip(), "       | ", limits)


def _ending(trajectory: Trajectory, scenario: Scenario | None, references: frozenset[str],
            limits: Limits) -> list[str]:
    lines = ["", "-- end ".ljust(limits.width, "-")]
    episode = trajectory.episode
    if episode is not None and episode.answer is not None:
        lines += _labelled("answer", episode.answer, limits)
        lines += _labelled("sources", ", ".join(_marked(s, references) for s in episode.sources) or "(none)", limits)
    elif episode is not None:
        lines += _labelled("answer", f"(none: {_why_no_answer(trajectory, episode)})", limits)
    if scenario is not None:
        lines += _labelled("reference", scenario.answer, limits)
        lines += _labelled("ref. emails", ", ".join(map(printable, scenario.message_ids)), limits)
    else:
        lines += _labelled("reference", "(not available: the dataset's scenarios were not found)", limits)
    judged = {True: "correct", False: "wrong", None: "no answer to judge"}[trajectory.answer_correct]
    lines += _labelled("judged", judged, limits)
    if trajectory.reward is not None:
        lines += _reward(trajectory.reward, limits)
    if episode is not None and episode.error is not None:
        lines += _labelled("tool error", f"{episode.error}: {episode.error_detail or ''}", limits)
    if trajectory.exception is not None:
        lines += _labelled("failed", trajectory.exception, limits)
    return lines


def _why_no_answer(trajectory: Trajectory, episode: EpisodeRecord) -> str:
    if trajectory.failed:
        return "stopped by an exception, below"
    if episode.error is not None:
        return "a tool error ended the episode, below"
    return "ran out of turns" if episode.ran_out_of_turns else "no final answer"


def _reward(reward: RewardRecord, limits: Limits) -> list[str]:
    """The total, its outcome and partial credit, and each check the partial credit counts."""
    summary = f"{reward.total:.3f} (outcome {reward.outcome}; partial credit {reward.partial:.2f}, added unless correct)"
    checks = [(reward.found_right_email, "the right email appeared in a search"),
              (reward.read_right_email, "the right email was read"),
              (reward.no_invalid_read, "no read of a non-existent id"),
              (reward.sources_correct, "sources correct")]
    lines = _labelled("reward", summary, limits)
    return lines + [" " * LABEL + f"[{'x' if passed else ' '}] {what}" for passed, what in checks]


def _marked(message_id: Any, references: frozenset[str]) -> str:
    text = printable(str(message_id))
    return f"{MARK}{text}" if _is_reference(message_id, references) else text


def _is_reference(message_id: Any, references: frozenset[str]) -> bool:
    return isinstance(message_id, str) and message_id in references


def _labelled(label: str, text: str, limits: Limits) -> list[str]:
    return _block(text, label.ljust(LABEL), limits, indent=" " * LABEL)


def _block(text: str, first: str, limits: Limits, indent: str | None = None) -> list[str]:
    """`text` wrapped to the width after a prefix (`first`, then `indent` or `first` again), at most
    `limits.text_lines` lines, then a marker counting the characters left out. Only as much text as
    those lines can hold is wrapped, so a megabyte of model output costs no more than a short one."""
    indent = first if indent is None else indent
    room = max(limits.width - max(len(first), len(indent)), 20)
    source = text.replace("\r\n", "\n").expandtabs(4)
    taken = list(itertools.islice(_pieces(source[:limits.text_lines * room], room), limits.text_lines))
    lines = [_cut((first if i == 0 else indent) + printable(piece), limits.width) for i, (piece, _) in enumerate(taken)]
    hidden = len(source) - sum(length for _, length in taken)
    if hidden > 0:
        lines.append(f"{indent}[... {hidden:,} more characters]")
    return lines


def _pieces(source: str, room: int) -> Iterator[tuple[str, int]]:
    """Each wrapped line of `source` with the number of its characters it stands for (its newline too)."""
    wrapper = textwrap.TextWrapper(room, expand_tabs=False, replace_whitespace=False, drop_whitespace=False)
    lines = source.split("\n")
    for number, line in enumerate(lines, start=1):
        pieces = wrapper.wrap(line) or [""]
        for i, piece in enumerate(pieces, start=1):
            ends_line = i == len(pieces) and number < len(lines)
            yield (piece if i == 1 else piece.lstrip()), len(piece) + ends_line


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."
