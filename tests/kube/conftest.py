"""The ``kube`` fixture: a real Kubernetes API for the whole session.

- With ``AGENTRUN_TEST_KUBECONFIG`` set, the tests run against that cluster (kind, k3d, ...): it must run
  kwok managing nodes annotated ``kwok.x-k8s.io/node=fake`` (the fixture registers two such nodes and
  removes them at the end).
- Otherwise a throwaway control plane (`tests.kube.cluster.Cluster`) is started once per session from the
  binaries ``hack/control-plane/build.sh`` caches (``make test`` builds them first; when they are missing
  the build runs here, once, after collection, outside any test's timeout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.cluster import (
    BUILD_SCRIPT,
    Cluster,
    ClusterError,
    ExistingCluster,
    KubeAccess,
    bin_dir,
    build_binaries,
    missing_binaries,
)

ENV_KUBECONFIG = "AGENTRUN_TEST_KUBECONFIG"
_build_error: list[str] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control-plane binaries before the first test when a selected test needs them."""
    if os.environ.get(ENV_KUBECONFIG) or session.config.option.collectonly:
        return
    if not any("kube" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    if not missing_binaries():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"kube: control-plane binaries missing, running {BUILD_SCRIPT} (cold: tens of minutes)")
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    try:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                build_binaries(stream=True)
        else:
            build_binaries(stream=True)
    except ClusterError as exc:
        _build_error.append(str(exc))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAccess]:
    """A real cluster: ``kube.kubeconfig`` (admin), ``kube.kubectl(...)``, ``kube.apply(...)``,
    ``kube.get(...)``, ``kube.wait_for(...)``, ``kube.service_account_kubeconfig(ns, name)``; nodes with
    ``nvidia.com/gpu`` capacity are ``kube.nodes``. A `Cluster` also has ``server``, ``workdir`` and
    ``logs(component)``."""
    existing = os.environ.get(ENV_KUBECONFIG)
    if existing:
        path = Path(existing).expanduser()
        if not path.is_file():
            pytest.fail(f"{ENV_KUBECONFIG}={existing}: no such file")
        cluster = ExistingCluster(path, scratch=tmp_path_factory.mktemp("kube"))
        cluster.nodes = ("agentrun-kwok-0", "agentrun-kwok-1")
        cluster.ensure_fake_nodes(cluster.nodes, timeout=120)
        try:
            yield cluster
        finally:
            for node in cluster.nodes:
                cluster.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
            cluster.close()
        return

    if _build_error:
        pytest.fail(_build_error[0], pytrace=False)
    missing = missing_binaries()
    if missing:
        try:
            build_binaries(stream=False)
        except ClusterError as exc:
            pytest.fail(str(exc), pytrace=False)
    try:
        cluster = Cluster.start(bin=bin_dir())
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
