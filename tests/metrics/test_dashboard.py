"""The Grafana dashboard against a real Prometheus: it scrapes a short local `agentrun run` (the run's
metrics and its embedded server's vLLM series) and an operator reconciling a run on the test control plane;
every panel query of charts/agentrun/dashboards/agentrun.json must return data, and every `agentrun_`
series the code exports must be on a panel (or be listed below as deliberately unpanelled) and in
docs/metrics.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentrun.metrics import OperatorMetrics, RunMetrics
from testkit.cluster import KubeAccess, free_port, wait_until
from testkit.operator_process import Operator
from tests.kube.conftest import kube  # noqa: F401  (the session cluster)
from tests.operator.conftest import crds, namespace  # noqa: F401  (fixtures)
from tests.runner.test_local import manifest

pytestmark = pytest.mark.timeout(600)  # above the wait below, so a timeout names the queries without data

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "agentrun" / "dashboards" / "agentrun.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
RUN = "tiny-run"  # tests.runner.test_local's manifest
# Grafana fills these in; the test selects every namespace and run, with a window of several scrapes.
VARIABLES = {"$namespace": ".*", "$run": ".*", "$__rate_interval": "20s"}
# Series exported on purpose without a panel: name -> why.
UNPANELLED: dict[str, str] = {}


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def concrete(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def exported_series() -> dict[str, str]:
    """Every agentrun_ series name the code's registries define -> its type, as a scrape names it."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = {}
    for registry in (RunMetrics("ns", "run").registry, OperatorMetrics(dict, dict).registry):
        for family in registry.collect():
            for suffix in suffixes[family.type]:
                names[family.name + suffix] = family.type
    return names


def test_every_exported_series_is_on_a_panel_or_deliberately_left_off_and_documented() -> None:
    expressions = " ".join(expr for _, expr in panel_queries())
    used = set(re.findall(r"agentrun_[a-z0-9_]+", expressions))
    exported = exported_series()
    assert used <= exported.keys(), f"panels query series nobody exports: {used - exported.keys()}"
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exported}
    for family in families:
        samples = [name for name in exported if re.sub(r"_(total|bucket|sum|count)$", "", name) == family]
        assert set(samples) & (used | UNPANELLED.keys()), f"{family} is on no panel and not in UNPANELLED"
    documented = METRICS_DOC.read_text()
    for family in families:
        assert f"`{family}" in documented, f"docs/metrics.md does not describe {family}"


def prometheus_config(targets: dict[str, tuple[int, dict[str, str]]]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": labels}]}
            for job, (port, labels) in targets.items()
        ],
    }


class Prometheus:
    def __init__(self, binary: Path, workdir: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.get("/-/ready"), timeout=60, what="Prometheus ready", alive=self.alive)

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")

    def get(self, path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:  # /-/ready answers 503 while starting: close its connection
            error.close()
            raise

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = json.loads(self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert reply["status"] == "success", reply
        return reply["data"]["result"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass
class LocalRun:
    """`agentrun run` in a child process, serving its metrics and its embedded server on fixed ports."""

    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    server_port: int

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"agentrun run exited with {self.process.returncode}:\n"
                               f"{self.log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def local_run(tiny_dir: Path, tmp_path: Path) -> Iterator[LocalRun]:
    metrics_port = free_port()
    server_port = next(port for port in iter(free_port, None) if port != metrics_port)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # Long enough to outlive the test: it is stopped once every panel has data.
            [sys.executable, "-m", "agentrun.cli.main", "run", str(manifest(tmp_path, str(tiny_dir), steps=200)),
             "--metrics-port", str(metrics_port), "--server-port", str(server_port), "--no-progress"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield LocalRun(process, log, metrics_port, server_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_every_panel_query_returns_data_from_a_real_prometheus(
    prometheus: Path, local_run: LocalRun, kube: KubeAccess, crds: None,  # noqa: F811
    namespace: Callable[[str], str], tmp_path: Path,  # noqa: F811
) -> None:
    # Its own operator, stopped at the end: tests/operator's session operator must be the only one there.
    operator = Operator(kube, tmp_path / "operator.log")
    operator.start()
    try:
        ns = namespace("dashboard")
        kube.apply({"apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
                    "metadata": {"name": "watched", "namespace": ns}, "spec": {"model": {"base": "Qwen/Qwen3-4B"}}})
        server = Prometheus(prometheus, tmp_path, prometheus_config({
            "agentrun-run": (local_run.metrics_port, {}),
            # What the chart's PodMonitor does for vLLM pods: the run's namespace and name as labels.
            "vllm": (local_run.server_port, {"namespace": "local", "run": RUN}),
            "agentrun-operator": (operator.metrics_port, {}),
        }))
        try:
            check_every_panel(server, local_run)
        finally:
            server.stop()
    finally:
        operator.stop()


def check_every_panel(server: Prometheus, local_run: LocalRun) -> None:
    missing: list[str] = []

    def every_query_has_data() -> bool:
        missing[:] = [f"{title}: {expr}" for title, expr in panel_queries() if not server.query(concrete(expr))]
        return not missing

    def both_alive() -> None:
        server.alive()
        local_run.alive()

    try:
        wait_until(every_query_has_data, timeout=420, interval=2, what="data for every panel query", alive=both_alive)
    except (TimeoutError, RuntimeError) as exc:  # RuntimeError: the run or Prometheus ended first
        raise AssertionError("panel queries without data:\n" + "\n".join(missing)) from exc
    # What was really scraped is what the code's registries say they export (no stray series).
    scraped = {series["metric"]["__name__"] for series in server.query('{__name__=~"agentrun_.+"}')}
    assert scraped <= exported_series().keys(), scraped - exported_series().keys()
