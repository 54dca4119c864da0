"""Applying a decision: a pure plan of API calls from the desired children, the decision, what the
watches show of the cluster and what this process last applied; then the calls themselves, behind a
three-method protocol (`agentrun.kube.Kube` is the real one).

Level-triggered and cheap when idle. Every kept child (Deployment, Services, ConfigMap, RBAC) is
server-side applied whenever the cluster's copy is not the one this process last applied: absent
(deleted by hand), moved (edited: its generation, or for kinds without one its resourceVersion, differs
from what the last apply answered) or superseded (the spec changed what it should be). A run whose
children are as applied costs no API call. Jobs are records, created once and never changed (their pod
template is immutable); the claim is created once and left alone (deleting it would lose the data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

Key = tuple[str, str]  # (kind, name) of a child within its run's namespace


class ChildApi(Protocol):
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def create(self, obj: dict[str, Any]) -> bool: ...

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool: ...


@dataclass(frozen=True)
class Applied:
    """What this process last applied of a child, and the cluster's version marker that apply answered."""

    fingerprint: str
    marker: str


@dataclass(frozen=True)
class Apply:
    obj: dict[str, Any]
    created: bool  # the cluster had no such child


@dataclass(frozen=True)
class Create:
    obj: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    api_version: str
    kind: str
    name: str


Action = Apply | Create | Delete


@dataclass(frozen=True)
class Plan:
    """Which children must exist now and which must be gone (from `lifecycle.Decision`)."""

    keep: tuple[dict[str, Any], ...] = ()  # server-side applied until they match
    create: tuple[dict[str, Any], ...] = ()  # Jobs and the claim: created when absent, never changed
    remove: tuple[dict[str, Any], ...] = ()  # deleted when present


def key(obj: Mapping[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def fingerprint(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def marker(obj: Mapping[str, Any]) -> str:
    """A child's version as far as its desired state goes: the generation where the kind has one (a
    Deployment's moves with its spec, not with its status), else the resourceVersion."""
    meta = obj.get("metadata") or {}
    return f"g{meta['generation']}" if meta.get("generation") else f"r{meta.get('resourceVersion', '')}"


def actions(plan: Plan, cluster: Mapping[Key, str], applied: Mapping[Key, Applied]) -> list[Action]:
    """The API calls that make the cluster (what the watches show: (kind, name) -> `marker`) match `plan`;
    none when it already does."""
    result: list[Action] = []
    for obj in plan.keep:
        last = applied.get(key(obj))
        stale = last is None or last.fingerprint != fingerprint(obj) or cluster.get(key(obj)) != last.marker
        if stale:
            result.append(Apply(obj, created=key(obj) not in cluster))
    for obj in plan.create:
        if key(obj) not in cluster and key(obj) not in applied:
            result.append(Create(obj))
    for obj in plan.remove:
        if key(obj) in cluster or key(obj) in applied:
            result.append(Delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"]))
    return result


def execute(api: ChildApi, namespace: str, todo: Iterable[Action], applied: MutableMapping[Key, Applied]) -> list[str]:
    """Make the calls; `applied` records what was applied. Returns the kinds of the children created."""
    created: list[str] = []
    for action in todo:
        match action:
            case Apply(obj, was_absent):
                answer = api.apply(obj)
                applied[key(obj)] = Applied(fingerprint(obj), marker(answer))
                if was_absent:
                    created.append(obj["kind"])
            case Create(obj):
                if api.create(obj):
                    created.append(obj["kind"])
                if obj["kind"] != "Job":  # the watch reports Jobs; the claim is not watched
                    applied[key(obj)] = Applied(fingerprint(obj), "")
            case Delete(api_version, kind, name):
                applied.pop((kind, name), None)
                api.delete(api_version, kind, namespace, name)
    return created
