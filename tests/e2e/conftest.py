"""The end-to-end tests run on the session's control plane (tests.kube) with the operator of tests.operator."""

from tests.kube.conftest import kube  # noqa: F401
from tests.operator.conftest import crds, namespace, operator  # noqa: F401
