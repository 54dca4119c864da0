"""A small Kubernetes REST client (httpx): the operator server-side-applies, creates and deletes its
children with it, and workload pods patch their run's status with their ServiceAccount. Resource names
come from the API server's discovery, so any kind it serves works.

Authentication is a bearer token (in-cluster ServiceAccount, TokenRequest) or a client certificate;
the operator builds it from kopf's login (kubeconfig or in-cluster), so no other Kubernetes library is
needed. Errors come back as `KubeError` with the API server's own message.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply; JSON is YAML
FIELD_MANAGER = "agentrun-operator"


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = None
    token_path: str | None = None  # re-read for every request (kubelet rotates projected tokens)
    ca_data: str | None = None  # PEM
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    cert_data: str | None = None  # PEM, instead of cert_path/key_path
    key_data: str | None = None
    insecure: bool = False


def group_version_path(api_version: str) -> str:
    """Where the API server serves `api_version` (and its discovery document)."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class TokenFile(httpx.Auth):
    """A bearer token read from its file at every request."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = f"Bearer {self.path.read_text().strip()}"
        yield request


class Kube:
    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        verify: ssl.SSLContext | bool = not credentials.insecure
        if not credentials.insecure and (credentials.ca_data or credentials.ca_path):
            verify = ssl.create_default_context(cafile=credentials.ca_path, cadata=credentials.ca_data)
        if credentials.cert_path and isinstance(verify, ssl.SSLContext):
            verify.load_cert_chain(credentials.cert_path, credentials.key_path)
        elif credentials.cert_data and isinstance(verify, ssl.SSLContext):
            load_pem_chain(verify, credentials.cert_data, credentials.key_data or "")
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
        auth = TokenFile(Path(credentials.token_path)) if credentials.token_path else None
        self.client = httpx.Client(base_url=credentials.server, verify=verify, headers=headers, auth=auth,
                                   timeout=timeout)
        self.resources: dict[tuple[str, str], str] = {}  # (apiVersion, kind) -> resource, from discovery

    @classmethod
    def in_cluster(cls) -> Kube:
        """The pod's own ServiceAccount; its projected token is read anew for each request, so a learner
        that runs for days outlives any one token."""
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return cls(Credentials(server=f"https://{host}:{port}", token_path=str(SERVICE_ACCOUNT_DIR / "token"),
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

    def resource(self, api_version: str, kind: str) -> str:
        """The resource (plural) name of `kind`, from the API server's discovery document of its group
        version, read once per group version: any kind the server serves works, CRDs included."""
        key = (api_version, kind)
        if key not in self.resources:
            document = self.request("GET", group_version_path(api_version))
            for entry in document.get("resources", []):
                if "/" not in entry["name"]:  # subresources are "<resource>/<name>"
                    self.resources[(api_version, entry["kind"])] = entry["name"]
            if key not in self.resources:
                raise KubeError(404, f"the API server serves no kind {kind} in {api_version}")
        return self.resources[key]

    def path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None,
             subresource: str | None = None) -> str:
        parts = [group_version_path(api_version), *(["namespaces", namespace] if namespace else []),
                 self.resource(api_version, kind), *(p for p in (name, subresource) if p)]
        return "/".join(parts)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else {}
        return self.request("GET", self.path(api_version, kind, namespace), params=params).get("items", [])

    def create(self, obj: dict[str, Any]) -> bool:
        """Create `obj`; False (and nothing changed) if an object of that name exists."""
        try:
            self.request("POST", self.path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace")), json=obj)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                    subresource: str | None = None) -> dict[str, Any]:
        return self.request("PATCH", self.path(api_version, kind, namespace, name, subresource), json=patch,
                            headers={"Content-Type": MERGE_PATCH})

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply: create `obj` or make the fields it sets what it says, owned by `field_manager`,
        conflicts forced (another manager's edit of a field the operator specifies is undone). Fields
        `obj` omits are left to others (the Deployment controller's annotations, a Job's selector)."""
        meta = obj["metadata"]
        return self.request("PATCH", self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
                            content=json.dumps(obj), params={"fieldManager": field_manager, "force": "true"},
                            headers={"Content-Type": APPLY_PATCH})

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete with background propagation (a Job's pods go with it); False if it was not there."""
        try:
            self.request("DELETE", self.path(api_version, kind, namespace, name),
                         json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def load_pem_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    """A client certificate and key given as PEM: ssl reads them only from files, so they are written into
    a private temporary directory for that one call and are gone when it returns."""
    with tempfile.TemporaryDirectory(prefix="agentrun-tls-") as folder:  # mode 0700
        cert_file, key_file = Path(folder) / "tls.crt", Path(folder) / "tls.key"
        cert_file.write_text(cert)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        context.load_cert_chain(str(cert_file), str(key_file))
