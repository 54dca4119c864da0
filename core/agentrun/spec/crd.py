"""The AgentTrainingRun CustomResourceDefinition, generated from the pydantic spec and status models.

Kubernetes wants a *structural* OpenAPI v3.0 schema: no `$ref`, no `anyOf` for optional fields, a type
on every node, `exclusiveMinimum` as a boolean. `structural()` rewrites pydantic's JSON Schema into that
shape and keeps what makes `kubectl explain` and server-side validation useful: descriptions, defaults,
enums, bounds, patterns and the CEL rules (`x-kubernetes-validations`) the models carry.

    agentrun crd > charts/agentrun/crds/agenttrainingruns.agentrun.dev.yaml   (a test fails on drift)
"""

from __future__ import annotations

from typing import Any

import yaml

from agentrun.spec.models import API_VERSION, DNS_LABEL, KIND, RunSpec
from agentrun.spec.status import RunStatus

GROUP, VERSION = API_VERSION.split("/")
PLURAL, SINGULAR, SHORT_NAME = "agenttrainingruns", "agenttrainingrun", "atr"
NAME = f"{PLURAL}.{GROUP}"
CRD_FILE = "charts/agentrun/crds/agenttrainingruns.agentrun.dev.yaml"

_KEPT = ("type", "description", "default", "enum", "minimum", "maximum", "pattern", "minLength", "maxLength",
         "minItems", "maxItems", "items", "properties", "required", "nullable", "format", "x-kubernetes-validations",
         "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields")


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON Schema node (with its `$defs`) as a structural OpenAPI v3.0 node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        return structural({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
    if "anyOf" in schema:  # `X | None`: X, nullable
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"only `X | None` unions map to a structural schema, not {schema['anyOf']}")
        merged = {**structural(options[0], defs), **{k: v for k, v in schema.items() if k != "anyOf"}}
        return structural({**merged, "nullable": True}, defs)
    node = {k: v for k, v in schema.items() if k in _KEPT}
    if "const" in schema:
        node["enum"] = [schema["const"]]
    if "exclusiveMinimum" in schema:
        node.update(minimum=schema["exclusiveMinimum"], exclusiveMinimum=True)
    if "exclusiveMaximum" in schema:
        node.update(maximum=schema["exclusiveMaximum"], exclusiveMaximum=True)
    if "enum" in node and "type" not in node:
        node["type"] = "integer" if all(isinstance(v, int) for v in node["enum"]) else "string"
    if node.get("default", 0) is None:
        del node["default"]  # the API server treats an absent optional field as null already
    if "properties" in node:
        node["type"] = "object"
        node["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
        if isinstance(node.get("default"), dict):
            node["default"] = {}  # nested fields carry their own defaults; the server fills them in
    if "items" in node:
        node["items"] = structural(node["items"], defs)
    extra = schema.get("additionalProperties")
    if extra is True:  # a Kubernetes type passed through whole (an Affinity): kept, not pruned
        node["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):  # a map (nodeSelector): its values' schema
        node["additionalProperties"] = structural(extra, defs)
    if "type" not in node:
        raise ValueError(f"schema node without a type: {schema}")
    if "description" in node:
        node["description"] = " ".join(node["description"].split())  # docstrings wrap; explain re-wraps
    return {k: node[k] for k in sorted(node, key=lambda k: (k not in ("type", "description"), k != "type"))}


def _schema_of(model: type[RunSpec] | type[RunStatus]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return structural(schema, schema.get("$defs", {}))


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a plain dict."""
    spec = _schema_of(RunSpec)
    spec["description"] = "What to train and how (the same spec `agentrun run` reads)."
    status = _schema_of(RunStatus)
    status["description"] = "Observed state, written by the operator and the run's own pods."
    root = {
        "type": "object",
        "description": "One training run of a tool-using agent: base model, dataset, environment, GRPO settings, "
                       "serving, learner, evaluation and storage.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {**spec, "default": {}},
            "status": status,
        },
        "x-kubernetes-validations": [{
            "rule": f"self.metadata.name.size() <= 53 && self.metadata.name.matches('{DNS_LABEL}')",
            "message": "metadata.name must be a DNS label of at most 53 characters (lowercase letters, digits, "
                       "'-'): the run's children are named after it",
        }],
    }
    column = lambda name, path, kind="string": {"name": name, "type": kind, "jsonPath": path}  # noqa: E731
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": NAME},
        "spec": {
            "group": GROUP,
            "names": {"kind": KIND, "plural": PLURAL, "singular": SINGULAR, "shortNames": [SHORT_NAME],
                      "listKind": f"{KIND}List", "categories": ["agentrun"]},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": root},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    column("Phase", ".status.phase"),
                    column("Step", ".status.progress.step", "integer"),
                    column("Reward", ".status.progress.reward", "number"),
                    column("Accuracy", ".status.progress.lastEvaluation.accuracy", "number"),
                    column("Age", ".metadata.creationTimestamp", "date"),
                ],
            }],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `agentrun crd` from the pydantic spec (core/agentrun/spec); do not edit.\n"
    return header + yaml.dump(crd(), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases: a schema node shared by several fields is written out at each."""

    def ignore_aliases(self, data: object) -> bool:
        return True
