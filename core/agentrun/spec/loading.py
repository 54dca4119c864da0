"""Load an `AgentTrainingRun` from YAML and turn every validation failure into a readable issue.

pydantic's errors name the location and the rule; users need the field path as they wrote it
(`spec.training.groupSize`), what was wrong, and what to do about it. `SpecError` carries all issues of
one file at once, so a user fixes them in one pass.
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


@dataclass(frozen=True)
class SpecIssue:
    path: str  # dotted field path as written in YAML, e.g. spec.training.groupSize
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class SpecError(Exception):
    def __init__(self, source: str, issues: list[SpecIssue]):
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: invalid AgentTrainingRun\n" + "\n".join(f"  - {issue}" for issue in issues))


def load_run(path: Path) -> AgentTrainingRun:
    """Read and validate a run manifest; raise SpecError naming every problem."""
    if not path.is_file():
        raise SpecError(str(path), [SpecIssue("<file>", "no such file", "check the path of the manifest")])
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(str(path), [SpecIssue(where, f"not valid YAML: {problem}", "fix the YAML syntax")]) from exc
    runs = [doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == KIND]
    if len(runs) != 1:
        found = f"{len(runs)} AgentTrainingRun documents" if runs else "no AgentTrainingRun document"
        hint = f"the file needs exactly one document with `apiVersion: {API_VERSION}` and `kind: {KIND}`"
        raise SpecError(str(path), [SpecIssue("kind", found, hint)])
    return parse_run(runs[0], source=str(path))


def parse_run(document: dict[str, Any], source: str = "<manifest>") -> AgentTrainingRun:
    try:
        return AgentTrainingRun.model_validate(document)
    except ValidationError as exc:
        raise SpecError(source, [describe(error) for error in exc.errors()]) from exc


def describe(error: ErrorDetails) -> SpecIssue:
    """One pydantic error as a SpecIssue with a field path and a hint."""
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc) or "<root>"
    kind = error["type"]
    ctx = error.get("ctx", {})
    message = error["msg"]
    if kind == "extra_forbidden":
        return SpecIssue(path, "unknown field", _did_you_mean(loc))
    if kind == "missing":
        return SpecIssue(path, "required field is missing", f"add `{loc[-1]}`")
    if kind in ("enum", "literal_error"):
        return SpecIssue(path, f"{error['input']!r} is not allowed", f"use one of {ctx.get('expected', '')}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return SpecIssue(path, f"{error['input']!r}: {message.lower()}", "change the value to be within bounds")
    if kind == "string_pattern_mismatch":
        return SpecIssue(path, f"{error['input']!r} is not a DNS label", "use lowercase letters, digits and '-'")
    if kind == "value_error":
        return SpecIssue(path, message.removeprefix("Value error, "))
    return SpecIssue(path, message, f"got {error['input']!r}" if "input" in error else "")


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
