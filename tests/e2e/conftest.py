"""The end-to-end tests run on the session's control plane (tests.kube) with an operator of their own,
stopped when the module ends: tests/metrics starts its own operator and needs it to be the only one."""

from collections.abc import Iterator

import pytest

from testkit.cluster import KubeAccess
from testkit.operator_process import Operator
from tests.kube.conftest import kube  # noqa: F401
from tests.operator.conftest import crds, namespace  # noqa: F401


@pytest.fixture(scope="module")
def operator(kube: KubeAccess, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:  # noqa: F811
    with Operator(kube, tmp_path_factory.mktemp("e2e-operator") / "operator.log") as running:
        yield running
