"""The ``kube`` fixture: a real Kubernetes API for the whole session.

- With ``AGENTRUN_TEST_KUBECONFIG`` set, the tests run against that cluster (kind, k3d, ...): it must run
  kwok managing nodes annotated ``kwok.x-k8s.io/node=fake`` (the fixture registers two such nodes and
  removes them at the end), with the Stage objects of ``testkit/kwok-stages.yaml`` applied when the
  tests rely on them.
- Otherwise a throwaway control plane (`testkit.cluster.Cluster`) is started once per session from the
  binaries ``hack/control-plane/build.sh`` caches (``make test`` builds them first; when they are missing
  the build runs here, once, after collection, outside any test's timeout), its kwok loading
  ``testkit/kwok-stages.yaml``.

Other folders use the fixture with ``from tests.kube.conftest import kube``; every such import shares
the one cluster of the session (it lives on ``config.stash``, counted by user).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.cluster import (
    BUILD_SCRIPT,
    KWOK_STAGES,
    Cluster,
    ClusterError,
    ExistingCluster,
    KubeAccess,
    bin_dir,
    build_binaries,
    missing_binaries,
)

ENV_KUBECONFIG = "AGENTRUN_TEST_KUBECONFIG"
#: {"cluster": KubeAccess, "users": int} while a session cluster runs; "build_error": str.
_STATE = pytest.StashKey[dict[str, Any]]()


def _state(config: pytest.Config) -> dict[str, Any]:
    return config.stash.setdefault(_STATE, {})


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
        _state(session.config)["build_error"] = str(exc)


def _start(tmp_path_factory: pytest.TempPathFactory, state: dict[str, Any]) -> KubeAccess:
    existing = os.environ.get(ENV_KUBECONFIG)
    if existing:
        path = Path(existing).expanduser()
        if not path.is_file():
            pytest.fail(f"{ENV_KUBECONFIG}={existing}: no such file", pytrace=False)
        cluster = ExistingCluster(path, scratch=tmp_path_factory.mktemp("kube"))
        cluster.nodes = ("agentrun-kwok-0", "agentrun-kwok-1")
        try:
            cluster.ensure_fake_nodes(cluster.nodes, timeout=120)
            return cluster
        except TimeoutError as exc:
            error = f"{ENV_KUBECONFIG}: {exc}"
        _stop(cluster)
        pytest.fail(error, pytrace=False)

    if "build_error" in state:
        pytest.fail(state["build_error"], pytrace=False)
    try:
        if missing_binaries():
            build_binaries(stream=False)
        return Cluster.start(bin=bin_dir(), kwok_config=KWOK_STAGES if KWOK_STAGES.is_file() else None)
    except ClusterError as exc:
        error = str(exc)
    pytest.fail(error, pytrace=False)  # outside the except: no chained traceback


def _stop(cluster: KubeAccess) -> None:
    if isinstance(cluster, Cluster):
        cluster.stop()
    elif isinstance(cluster, ExistingCluster):
        for node in cluster.nodes:
            cluster.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        cluster.close()


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAccess]:
    """A real cluster: ``kube.kubeconfig`` (admin), ``kube.kubectl(...)``, ``kube.apply(...)``,
    ``kube.get(...)``, ``kube.wait_for(...)``, ``kube.service_account_kubeconfig(ns, name)``; nodes with
    ``nvidia.com/gpu`` capacity are ``kube.nodes``. A `Cluster` also has ``server``, ``workdir`` and
    ``logs(component)``."""
    state = _state(request.config)
    if "cluster" not in state:
        state["cluster"], state["users"] = _start(tmp_path_factory, state), 0
    state["users"] += 1
    try:
        yield state["cluster"]
    finally:
        state["users"] -= 1
        if state["users"] == 0:
            _stop(state.pop("cluster"))


@pytest.fixture
def ns(kube: KubeAccess, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test's module, deleted when the test ends."""
    name = f"{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}-{uuid.uuid4().hex[:8]}".replace("_", "-")
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
