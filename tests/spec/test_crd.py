"""The CRD is generated from the spec: structural (what the API server demands), faithful to the
pydantic models (descriptions, defaults, bounds, CEL rules), and the file in the repo does not drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from agentrun.cli.main import cli
from agentrun.spec.crd import CRD_FILE, crd, crd_yaml

ROOT = Path(__file__).resolve().parents[2]


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def spec_schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_the_schema_is_structural() -> None:
    for path, node in nodes(spec_schema()):
        assert "type" in node, path
        assert not {"$ref", "anyOf", "oneOf", "allOf", "const", "title"} & node.keys(), path
        # a map's values have one schema; an object with properties allows no others (pruned, not kept)
        assert isinstance(node.get("additionalProperties", {}), dict) and not (
            "additionalProperties" in node and "properties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


def test_maps_keep_their_values_and_passed_through_kubernetes_types_keep_every_field() -> None:
    found = dict(nodes(spec_schema()))
    assert found[".spec.pods.learner.nodeSelector"]["additionalProperties"] == {"type": "string", "maxLength": 63}
    assert found[".spec.pods.all.affinity"]["x-kubernetes-preserve-unknown-fields"] is True
    conditions = found[".status.conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert found[".status.startTime"]["format"] == "date-time"


def test_the_schema_carries_the_models_descriptions_defaults_bounds_and_rules() -> None:
    found = dict(nodes(spec_schema()))
    rate = found[".spec.training.learningRate"]
    assert rate["type"] == "number" and rate["default"] == 2e-5 and rate["maximum"] == 0.01
    assert rate["minimum"] == 0 and rate["exclusiveMinimum"] is True
    assert "learning rate" in rate["description"] and "\n" not in rate["description"]
    assert found[".spec.dataset.source"]["enum"] == ["synthetic", "hf", "maildir"]
    assert found[".spec.learner.deepspeed.zeroStage"] == {
        "type": "integer", "description": "DeepSpeed ZeRO stage (cluster mode).", "default": 2, "enum": [0, 1, 2, 3]}
    assert found[".spec.model.revision"]["nullable"] is True and "default" not in found[".spec.model.revision"]
    assert found[".spec.training"]["default"] == {}  # nested defaults are filled in by the server
    assert found[".spec.model.base"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert "maildirPath" in found[".spec.dataset"]["x-kubernetes-validations"][0]["rule"]
    assert found[".status.phase"]["enum"][:2] == ["Pending", "Preparing"]


def test_the_difficulty_settings_and_reward_weights_are_explained_bounded_and_checked() -> None:
    found = dict(nodes(spec_schema()))
    style = found[".spec.dataset.messageIdStyle"]
    assert (style["enum"], style["default"]) == (["enron", "short"], "enron")
    assert "<m4821@thyme>" in style["description"]
    density = found[".spec.dataset.hardDistractors"]
    assert (density["minimum"], density["maximum"], density["default"]) == (0.0, 1.0, 1.0)
    assert "first search hit" in density["description"]
    assert found[".spec.dataset.emailsPerInbox"]["default"] == 500
    wrong = found[".spec.reward.wrongAnswer"]
    assert (wrong["type"], wrong["default"], wrong["minimum"], wrong["maximum"]) == ("number", -1.0, -10.0, 10.0)
    assert "break-even" in found[".spec.reward"]["description"] and "0.42" in found[".spec.reward"]["description"]
    (rule,) = found[".spec.reward"]["x-kubernetes-validations"]
    assert rule["rule"].startswith("(has(self.correctAnswer) ? self.correctAnswer : 1.0) > ")
    assert "correctAnswer must exceed" in rule["message"]


def test_the_resource_has_status_short_name_and_columns() -> None:
    definition = crd()
    version = definition["spec"]["versions"][0]
    assert definition["metadata"]["name"] == "agenttrainingruns.agentrun.dev"
    assert definition["spec"]["names"]["shortNames"] == ["atr"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Phase", "Step", "Reward", "Accuracy", "Age"]


def test_the_crd_file_in_the_repo_is_the_generated_one() -> None:
    committed = (ROOT / CRD_FILE).read_text()
    assert committed == crd_yaml(), f"{CRD_FILE} drifted from the spec: run `agentrun crd > {CRD_FILE}`"
    result = CliRunner().invoke(cli, ["crd"])
    assert result.exit_code == 0 and result.output == committed
