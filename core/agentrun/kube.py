"""A small Kubernetes REST client (httpx) for the few kinds agentrun touches: the operator creates and
deletes its children with it, and workload pods patch their run's status with their ServiceAccount.

Authentication is a bearer token (in-cluster ServiceAccount, TokenRequest) or a client certificate;
the operator builds it from kopf's login (kubeconfig or in-cluster), so no other Kubernetes library is
needed. Errors come back as `KubeError` with the API server's own message.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentrun.spec.crd import PLURAL
from agentrun.spec.models import API_VERSION, KIND

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"

PLURALS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "Secret"): "secrets",
    ("v1", "Event"): "events",
    ("batch/v1", "Job"): "jobs",
    ("apps/v1", "Deployment"): "deployments",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    (API_VERSION, KIND): PLURAL,
}


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = None
    ca_data: str | None = None  # PEM
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False


def path(api_version: str, kind: str, namespace: str | None, name: str | None = None,
         subresource: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base, *(["namespaces", namespace] if namespace else []), PLURALS[(api_version, kind)]]
    parts += [p for p in (name, subresource) if p]
    return "/".join(parts)


class Kube:
    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        verify: ssl.SSLContext | bool = not credentials.insecure
        if not credentials.insecure and (credentials.ca_data or credentials.ca_path):
            verify = ssl.create_default_context(cafile=credentials.ca_path, cadata=credentials.ca_data)
        if credentials.cert_path and isinstance(verify, ssl.SSLContext):
            verify.load_cert_chain(credentials.cert_path, credentials.key_path)
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
        self.client = httpx.Client(base_url=credentials.server, verify=verify, headers=headers, timeout=timeout)

    @classmethod
    def in_cluster(cls) -> Kube:
        """The pod's own ServiceAccount (the token file is re-read by kubelet rotation; one run is short
        enough that the token read at start stays valid: projected tokens live an hour or more)."""
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return cls(Credentials(server=f"https://{host}:{port}",
                               token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
                               ca_path=str(SERVICE_ACCOUNT_DIR / "ca.crt")))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, message)
        return response.json() if response.content else {}

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else {}
        return self.request("GET", path(api_version, kind, namespace), params=params).get("items", [])

    def create(self, obj: dict[str, Any]) -> bool:
        """Create `obj`; False (and nothing changed) if an object of that name exists."""
        try:
            self.request("POST", path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace")), json=obj)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                    subresource: str | None = None) -> dict[str, Any]:
        return self.request("PATCH", path(api_version, kind, namespace, name, subresource), json=patch,
                            headers={"Content-Type": MERGE_PATCH})

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete with background propagation (a Job's pods go with it); False if it was not there."""
        try:
            self.request("DELETE", path(api_version, kind, namespace, name),
                         json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def write_pem(data: str) -> str:
    """A PEM string as a private temporary file (ssl wants paths for client certificates)."""
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return handle.name
