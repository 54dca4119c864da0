"""Load an `AgentTrainingRun` from YAML and turn every validation failure into a readable issue.

pydantic's errors name the location and the rule; users need the field path as they wrote it
(`spec.training.groupSize`), what was wrong, and what to do about it. `SpecError` carries all issues of
one file at once, so a user fixes them in one pass.

A manifest is untrusted input, and `agentrun validate`, `agentrun run` and every workload pod read it
through `load_run`, so this one loader bounds what a file may cost and what an error may say: at most
MAX_BYTES of UTF-8; nesting no deeper than MAX_DEPTH (checked while composing, so Python's recursion
limit is never reached); after alias expansion (each use of an alias counts the whole node it names) at
most MAX_NODES values and MAX_BYTES of text, so a few hundred bytes of nested aliases cannot become
gigabytes in memory or in run.json. A duplicate key is an error, not "the last one wins": a repeated
`steps:` is a typo. No issue quotes more than ISSUE_CHARS characters, however large the bad value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agentrun.spec.models import API_VERSION, KIND, AgentTrainingRun

MAX_BYTES = 1024 * 1024  # a manifest is a few KB
MAX_DEPTH = 100  # the spec nests 4 levels deep
MAX_NODES = 20_000  # the examples have about 100 values; parsing 20,000 takes well under a second
MAX_ISSUES = 20  # more are summarised in one line: fix these first
QUOTE_CHARS = 100  # of a value's repr in an issue
ISSUE_CHARS = 300  # of each part of an issue, whatever produced it


def _clip(text: str, limit: int) -> str:
    """`text` as one line of at most `limit` printable characters (others escaped), a cut marked with '...'."""
    text = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class SpecIssue:
    path: str  # dotted field path as written in YAML (spec.training.groupSize), "line N, column M" or "<file>"
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        for name in ("path", "message", "hint"):
            object.__setattr__(self, name, _clip(getattr(self, name), ISSUE_CHARS))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class SpecError(Exception):
    def __init__(self, source: str, issues: list[SpecIssue]):
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: invalid AgentTrainingRun\n" + "\n".join(f"  - {issue}" for issue in issues))


class _Refused(yaml.MarkedYAMLError):
    """A limit or rule of the loader broken at `mark`, with what to do about it."""

    def __init__(self, problem: str, mark: yaml.Mark, hint: str):
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts the expanded document while composing it and rejects duplicate keys."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = self.nodes = self.chars = 0  # nesting now; values and scalar characters so far, expanded
        self.sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, characters) of its node, once composed

    def compose_document(self) -> yaml.Node | None:
        self.sizes = {}  # anchors are per document
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.anchors and event.anchor not in self.sizes:
                raise _Refused(f"alias *{event.anchor} is inside the node it names", event.start_mark,
                               "an anchored node cannot contain its own alias")
            self._spend(*self.sizes.get(event.anchor, (0, 0)), event.start_mark)
            return super().compose_node(parent, index)  # an undefined alias is PyYAML's error
        if self.depth == MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark,
                           "a manifest nests a few levels; check the brackets and indentation")
        nodes, chars = self.nodes, self.chars
        self.depth += 1
        node = super().compose_node(parent, index)
        self.depth -= 1
        self._spend(1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0, event.start_mark)
        if event.anchor is not None:
            self.sizes[event.anchor] = (self.nodes - nodes, self.chars - chars)
        return node

    def _spend(self, nodes: int, chars: int, mark: yaml.Mark) -> None:
        self.nodes += nodes
        self.chars += chars
        if self.nodes > MAX_NODES or self.chars > MAX_BYTES:
            raise _Refused(f"the manifest expands to more than {MAX_NODES:,} values or {MAX_BYTES // 1024} KiB of "
                           "text (each use of an alias counts the whole node it names)", mark,
                           "a manifest needs a few hundred values; use fewer or smaller aliases")

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        node: yaml.MappingNode = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], int] = {}  # key -> line it first appears on
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if (key.tag, key.value) in first:
                raise _Refused(f"duplicate key {key.value!r} (lines {first[key.tag, key.value]} and {line})",
                               key.start_mark, "YAML would keep only the last value: remove or rename one")
            first[key.tag, key.value] = line
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node.tag == "tag:yaml.org,2002:binary":  # bytes, which neither JSON nor run.json can hold
            raise _Refused("!!binary values are not supported", node.start_mark, "write the value as a string")
        try:
            return super().construct_object(node, deep)
        except ValueError as error:  # Python rejected what YAML's rules call a number or a date: 0x_, 2024-13-01
            raise _Refused(f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}: {error}",
                           node.start_mark, "quote the value to make it a string") from None


def load_run(path: Path) -> AgentTrainingRun:
    """Read and validate a run manifest; raise SpecError naming every problem."""
    text = _read(path)
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_BoundedLoader) if doc is not None]
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [_yaml_issue(exc, text)]) from exc
    runs = [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == KIND]
    if len(runs) != 1:
        found = f"{len(runs)} AgentTrainingRun documents" if runs else "no AgentTrainingRun document"
        hint = f"the file needs exactly one document with `apiVersion: {API_VERSION}` and `kind: {KIND}`"
        raise SpecError(str(path), [SpecIssue("kind", found, hint)])
    return parse_run(runs[0], source=str(path))


def _read(path: Path) -> str:
    """The manifest's text: a regular file of at most MAX_BYTES bytes of UTF-8."""
    if not path.is_file():
        problem = "not a regular file" if path.exists() else "no such file"
        raise SpecError(str(path), [SpecIssue("<file>", problem, "check the path of the manifest")])
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(str(path), [SpecIssue("<file>", f"cannot read it: {exc.strerror}", "check its permissions")])
    if len(data) > MAX_BYTES:
        raise SpecError(str(path), [SpecIssue("<file>", f"larger than {MAX_BYTES // 1024} KiB",
                                              "a manifest is a few KB: is this the right file?")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})"
        where = _position(data[: exc.start].decode("utf-8"))
        raise SpecError(str(path), [SpecIssue(where, problem, "save the file as UTF-8")]) from None


def _position(before: str) -> str:
    """ "line N, column M" of the character that follows the text `before`."""
    lines = before.split("\n")
    return f"line {len(lines)}, column {len(lines[-1]) + 1}"


def _yaml_issue(error: yaml.YAMLError, text: str) -> SpecIssue:
    if isinstance(error, yaml.reader.ReaderError):  # a control character, before any parsing
        return SpecIssue(_position(text[: error.position]), f"character #x{error.character:04x} is not allowed "
                         "in YAML", "remove it, or write it as an escape in a double-quoted string")
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
    if isinstance(error, _Refused):
        return SpecIssue(where, error.problem or "", error.hint)
    problem = getattr(error, "problem", None) or str(error)
    return SpecIssue(where, f"not valid YAML: {problem}", "fix the YAML syntax")


def parse_run(document: dict[str, Any], source: str = "<manifest>") -> AgentTrainingRun:
    try:
        return AgentTrainingRun.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        issues = [describe(error) for error in errors[:MAX_ISSUES]]
        if len(errors) > MAX_ISSUES:
            issues.append(SpecIssue("<file>", f"{len(errors) - MAX_ISSUES} more problems not shown",
                                    "fix these and validate again"))
        raise SpecError(source, issues) from exc


def describe(error: ErrorDetails) -> SpecIssue:
    """One pydantic error as a SpecIssue with a field path and a hint; a value is quoted in at most
    QUOTE_CHARS characters (pydantic's `input` may be a megabyte string or a whole expanded subtree)."""
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc) or "<root>"
    kind = error["type"]
    ctx = error.get("ctx", {})
    message = error["msg"]
    got = _clip(repr(error["input"]), QUOTE_CHARS) if "input" in error else ""
    if kind == "extra_forbidden":
        return SpecIssue(path, "unknown field", _did_you_mean(loc))
    if kind == "missing":
        return SpecIssue(path, "required field is missing", f"add `{loc[-1]}`")
    if kind in ("enum", "literal_error"):
        return SpecIssue(path, f"{got} is not allowed", f"use one of {ctx.get('expected', '')}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return SpecIssue(path, f"{got}: {message.lower()}", "change the value to be within bounds")
    if kind == "string_pattern_mismatch":
        return SpecIssue(path, f"{got} is not a DNS label", "use lowercase letters, digits and '-'")
    if kind == "value_error":
        return SpecIssue(path, message.removeprefix("Value error, "))
    return SpecIssue(path, message, f"got {got}" if got else "")


def _did_you_mean(loc: list[str]) -> str:
    known = _known_fields(loc[:-1])
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"known fields here: {', '.join(sorted(known))}" if known else "remove it"


def _known_fields(parent: list[str]) -> list[str]:
    """The camelCase field names allowed at `parent` (a location within AgentTrainingRun)."""
    model: type[BaseModel] = AgentTrainingRun
    for part in parent:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]
