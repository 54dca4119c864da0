"""The pinned external tools (hack/tools/build.sh) run and are the versions hack/tools/versions.env pins.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tools import ToolMissingError, pinned_versions, tool


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_helm_version(helm: Path) -> None:
    out = run(helm, "version", "--short")
    assert out.returncode == 0, out.stderr
    # v3.19.0+g3d8990f: the pinned tag, and the tag's commit (set by build.sh's -X flags).
    commit = pinned_versions()["HELM_GIT_COMMIT"]
    assert out.stdout.strip() == f"{pinned_versions()['HELM_VERSION']}+g{commit[:7]}"


def test_helm_default_kubernetes_version_is_set(helm: Path, tmp_path: Path) -> None:
    """build.sh sets helm's default .Capabilities.KubeVersion from its client-go (1.34), not the 1.20 fallback."""
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\nkubeVersion: '>=1.30.0-0'\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
        "data: {kube: '{{ .Capabilities.KubeVersion.Version }}'}\n"
    )
    out = run(helm, "template", "c", chart)
    assert out.returncode == 0, out.stderr  # with the 1.20 fallback: "chart requires kubeVersion: >=1.30.0-0"
    assert "data: {kube: 'v1.34.0'}" in out.stdout, out.stdout


def debian_version_line(name: str) -> re.Pattern[str]:
    """``<name>, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)``: the pinned package."""
    deb = pinned_versions()["PROMETHEUS_DEB_VERSION"]
    upstream = deb.rsplit("-", 1)[0]
    return re.compile(rf"^{name}, version {re.escape(upstream)} \(.*revision: {re.escape(deb)}\)$", re.MULTILINE)


def test_prometheus_version(prometheus: Path) -> None:
    out = run(prometheus, "--version")
    assert out.returncode == 0, out.stderr
    assert debian_version_line("prometheus").search(out.stdout + out.stderr), out.stdout + out.stderr


def test_promtool_version(promtool: Path) -> None:
    out = run(promtool, "--version")
    assert out.returncode == 0, out.stderr
    assert debian_version_line("promtool").search(out.stdout + out.stderr), out.stdout + out.stderr


def test_skaffold_version(skaffold: Path) -> None:
    out = run(skaffold, "version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == pinned_versions()["SKAFFOLD_VERSION"]


VALID_CONFIG = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: agentrun
    static_configs:
      - targets: ["127.0.0.1:9090"]
"""

# scrape_interval is not a duration.
INVALID_CONFIG = """\
scrape_configs:
  - job_name: agentrun
    scrape_interval: often
    static_configs:
      - targets: ["127.0.0.1:9090"]
"""


def test_promtool_check_config_accepts_a_valid_scrape_config(promtool: Path, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(VALID_CONFIG)
    out = run(promtool, "check", "config", config, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_check_config_rejects_an_invalid_one(promtool: Path, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(INVALID_CONFIG)
    out = run(promtool, "check", "config", config, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "FAILED" in text and 'not a valid duration string: "often"' in text, text


def test_tool_names_make_tools_when_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTRUN_CACHE", str(tmp_path / "empty-cache"))
    import tests.tools

    tests.tools.bin_dir.cache_clear()
    try:
        with pytest.raises(ToolMissingError, match="run `make tools`"):
            tool("helm")
        with pytest.raises(ValueError, match="unknown tool"):
            tool("kubectl")
    finally:
        tests.tools.bin_dir.cache_clear()
