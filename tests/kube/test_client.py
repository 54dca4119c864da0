"""agentrun.kube, the operator's and the workloads' REST client, against the real API server: server-side
apply, resource names from discovery, and a projected token read anew at each request."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import pytest

from agentrun.kube import Credentials, Kube, KubeError
from testkit.cluster import KubeAccess


def admin(kube: KubeAccess) -> Kube:
    """The client authenticated with the kubeconfig's own client certificate, given as PEM (as kopf's login
    hands it to the operator): no copy of the key is left on disk."""
    config = json.loads(kube.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    pem = lambda field: base64.b64decode(field).decode()  # noqa: E731
    return Kube(Credentials(server=cluster["server"], ca_data=pem(cluster["certificate-authority-data"]),
                            cert_data=pem(user["client-certificate-data"]), key_data=pem(user["client-key-data"])))


def config_map(ns: str, value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "namespace": ns},
            "data": {"owned": value}}


def test_apply_creates_changes_nothing_when_equal_and_forces_its_fields_back(kube: KubeAccess, ns: str) -> None:
    with admin(kube) as client:
        created = client.apply(config_map(ns, "1"))
        again = client.apply(config_map(ns, "1"))
        assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # a no-op write
        kube.kubectl("patch", "configmap", "applied", "-n", ns, "--type=merge",
                     "-p", '{"data":{"owned":"edited","theirs":"kept"}}')
        restored = client.apply(config_map(ns, "1"))
        assert restored["data"] == {"owned": "1", "theirs": "kept"}  # fields it does not set stay someone else's
        managers = {m["manager"] for m in restored["metadata"]["managedFields"] if m["operation"] == "Apply"}
        assert managers == {"agentrun-operator"}


def test_resource_names_come_from_discovery_and_an_unknown_kind_names_itself(kube: KubeAccess) -> None:
    with admin(kube) as client:
        assert client.resource("apps/v1", "Deployment") == "deployments"
        assert client.resource("batch/v1", "Job") == "jobs"
        assert client.resource("rbac.authorization.k8s.io/v1", "RoleBinding") == "rolebindings"
        with pytest.raises(KubeError, match="no kind Widget in apps/v1"):
            client.resource("apps/v1", "Widget")


def test_a_token_file_is_read_at_every_request(kube: KubeAccess, ns: str, tmp_path: Path) -> None:
    def token_of(account: str) -> str:
        config = json.loads(kube.service_account_kubeconfig(ns, account).read_text())
        return config["users"][0]["user"]["token"]

    cluster = json.loads(kube.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    cluster = cluster["clusters"][0]["cluster"]
    token = tmp_path / "token"
    token.write_text(token_of("first"))
    client = Kube(Credentials(server=cluster["server"], token_path=str(token),
                              ca_data=base64.b64decode(cluster["certificate-authority-data"]).decode()))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with client:
        whoami = lambda: client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",  # noqa: E731
                                        json=review)["status"]["userInfo"]["username"]
        assert whoami() == f"system:serviceaccount:{ns}:first"
        token.write_text(token_of("second"))  # kubelet rotated the projected token
        assert whoami() == f"system:serviceaccount:{ns}:second"


def test_a_client_certificate_given_as_pem_leaves_no_file_behind(kube: KubeAccess) -> None:
    with admin(kube) as client:
        assert client.resource("v1", "ConfigMap") == "configmaps"  # authenticated: discovery answered
    assert not list(Path(tempfile.gettempdir()).glob("agentrun-tls-*"))
