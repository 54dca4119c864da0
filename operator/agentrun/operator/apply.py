"""Applying a decision: a pure plan of API calls from the desired children, the decision, what the
watches show of the cluster and what this process last applied; then the calls themselves, behind a
three-method protocol (`agentrun.kube.Kube` is the real one).

Level-triggered and cheap when idle. Every kept child (Deployment, Services, ConfigMap, RBAC) is
server-side applied whenever the cluster's copy is not the one this process last applied: absent
(deleted by hand), moved (edited: its generation, or for kinds without one its resourceVersion, differs
from what the last apply answered) or superseded (the spec changed what it should be). A run whose
children are as applied costs no API call, and neither does a child the watches have not reported yet.
Jobs are records, created once (again only after the watches showed one gone) and never changed (their
pod template is immutable); the claim is created once and left alone (deleting it would lose the data).
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
    """What this process last applied or created of a child, the version marker the API server answered,
    and whether a watch event has shown that version since: until one has, a child missing from the
    watches is one they have not reported yet, not one someone deleted."""

    fingerprint: str
    marker: str
    seen: bool = False


def seen(applied: Mapping[Key, Applied], cluster: Mapping[Key, str]) -> dict[Key, Applied]:
    """`applied` with every child the watches now show marked seen."""
    return {k: Applied(a.fingerprint, a.marker, True) if not a.seen and k in cluster
            and (cluster[k] == a.marker or not a.marker) else a for k, a in applied.items()}


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
        shown = cluster.get(key(obj))
        stale = (last is None or last.fingerprint != fingerprint(obj)
                 or (shown is None and last.seen)  # deleted
                 or (shown is not None and shown != last.marker))  # edited by someone else
        if stale:
            result.append(Apply(obj, created=shown is None))
    for obj in plan.create:
        last = applied.get(key(obj))
        if key(obj) not in cluster and (last is None or last.seen):
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
                applied[key(obj)] = Applied(fingerprint(obj), "")  # the claim is not watched: never seen
            case Delete(api_version, kind, name):
                applied.pop((kind, name), None)
                api.delete(api_version, kind, namespace, name)
    return created
