"""skaffold.yaml with the real skaffold (hack/tools): the config and each profile parse, and a render wires
the images it would build into the chart: the operator's image, and the trainer and serving images the
operator hands to run pods."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentrun.operator.children import VERSION as APP_VERSION

ROOT = Path(__file__).resolve().parents[2]


def skaffold_cmd(skaffold: Path, helm: Path, tmp_path: Path, *args: str) -> str:
    env = {"HOME": str(tmp_path), "PATH": f"{helm.parent}:/usr/bin:/bin", "SKAFFOLD_UPDATE_CHECK": "false"}
    result = subprocess.run([str(skaffold), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("profile", [None, "cpu", "gpu"])
def test_the_config_and_its_profiles_are_valid(skaffold: Path, helm: Path, tmp_path: Path, profile: str | None) -> None:
    text = skaffold_cmd(skaffold, helm, tmp_path, "diagnose", "--yaml-only", *(["-p", profile] if profile else []))
    config = yaml.safe_load(text)
    assert [a["image"] for a in config["build"]["artifacts"]] == [
        "ghcr.io/agentrun/operator", "ghcr.io/agentrun/trainer", "ghcr.io/agentrun/serving"]
    assert Path(config["deploy"]["helm"]["releases"][0]["chartPath"]) == ROOT / "charts" / "agentrun"


@pytest.mark.parametrize(("profile", "replicas"), [("cpu", 1), ("gpu", 2)])
def test_a_render_wires_the_built_images_into_the_chart(
    skaffold: Path, helm: Path, tmp_path: Path, profile: str, replicas: int
) -> None:
    text = skaffold_cmd(skaffold, helm, tmp_path, "render", "-p", profile, "--digest-source=tag", "--offline=true")
    objects: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(text) if doc]
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == replicas
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    repository, tag = container["image"].rsplit(":", 1)
    assert repository == "ghcr.io/agentrun/operator" and tag
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AGENTRUN_TRAINER_IMAGE"] == f"ghcr.io/agentrun/trainer:{tag}"
    assert env["AGENTRUN_SERVING_IMAGE"] == f"ghcr.io/agentrun/serving:{tag}"
    # the cpu profile builds the serving image on vLLM's CPU release: it is also what CPU-served runs get
    serving_cpu = f"ghcr.io/agentrun/serving:{tag}" if profile == "cpu" else f"ghcr.io/agentrun/serving-cpu:{APP_VERSION}"
    assert env["AGENTRUN_SERVING_CPU_IMAGE"] == serving_cpu
