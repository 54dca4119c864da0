"""The operator under test: the CRDs applied to the session's real control plane (tests.kube) and
`agentrun operator` running as a child process against it (`testkit.operator_process`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from testkit.cluster import KubeAccess
from testkit.operator_process import CRDS, Operator, provide_volumes
from tests.kube.conftest import kube  # noqa: F401  (the session's cluster)


@pytest.fixture(scope="session")
def crds(kube: KubeAccess) -> None:  # noqa: F811
    kube.kubectl("apply", "--server-side", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/agenttrainingruns.agentrun.dev", "crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev")


@pytest.fixture(scope="session")
def operator(kube: KubeAccess, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:  # noqa: F811
    provide_volumes(kube, 40)
    with Operator(kube, tmp_path_factory.mktemp("operator") / "operator.log") as running:
        yield running


@pytest.fixture
def namespace(kube: KubeAccess) -> Iterator[Callable[[str], str]]:  # noqa: F811
    """Fresh namespaces for a test, deleted (with everything in them) when it ends."""
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        kube.kubectl("create", "namespace", name)
        created.append(name)
        return name

    yield create
    for name in created:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """A failing operator test shows the operator's last log lines."""
    outcome = yield
    report = outcome.get_result()
    running = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, Operator):
        report.sections.append(("operator log", running.tail()))
