"""A throwaway real Kubernetes control plane on loopback, for tests.

`Cluster` starts etcd, kube-apiserver (RBAC, ServiceAccount admission, TokenRequest, Pod Security,
OwnerReferencesPermissionEnforcement), kube-controller-manager
(every controller: garbage collector, Job, Deployment, ReplicaSet, ServiceAccount tokens, ...),
kube-scheduler and kwok (fake nodes and pod lifecycles) from the binaries that
``hack/control-plane/build.sh`` caches, in a temporary directory with free ports, and registers fake GPU
nodes. `ExistingCluster` gives the same interface over a cluster someone else runs (kind, k3d), named by a
kubeconfig.

Both offer: ``kubeconfig`` (admin), ``kubectl(...)``, ``apply(...)``, ``wait_for(...)`` and
``service_account_kubeconfig(...)``, which mints a kubeconfig holding a real ServiceAccount token from the
TokenRequest API (the identity to test RBAC with).

Only the standard library and ``openssl`` are used: the CA, serving and client certificates and the
ServiceAccount signing key are made with the ``openssl`` command.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "hack" / "control-plane" / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")

#: kwok Stage objects the session cluster's kwok loads (``--config``): pod lifecycles tests can steer.
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
#: Annotation kwok is told to manage nodes by (``--manage-nodes-with-annotation-selector``).
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
GPU_RESOURCE = "nvidia.com/gpu"

T = TypeVar("T")


class ClusterError(RuntimeError):
    """The control plane could not be started (the message carries the components' last log lines)."""


# --------------------------------------------------------------------------------------------------------
# binaries


def bin_dir() -> Path:
    """Where build.sh puts (or has put) the binaries of the pinned versions."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def missing_binaries(directory: Path | None = None) -> list[str]:
    directory = directory or bin_dir()
    return [b for b in BINARIES if not os.access(directory / b, os.X_OK)]


def build_binaries(*, stream: bool = True) -> Path:
    """Run build.sh (a no-op when the cache is warm); returns the bin directory."""
    kwargs: dict[str, Any] = {} if stream else {"capture_output": True, "text": True}
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], check=False, **kwargs)
    if proc.returncode != 0:
        detail = "" if stream else "\n" + _tail_text((proc.stdout or "") + (proc.stderr or ""), 40)
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}{detail}")
    return bin_dir()


# --------------------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``check`` until it returns a truthy value (returned) or ``timeout`` seconds pass.

    Exceptions raised by ``check`` count as "not yet" and the last one is reported on timeout. ``alive``
    is called between polls and may raise to stop early (a component that exited).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - "not yet", reported on timeout
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return _tail_text(path.read_text(errors="replace"), lines)
    except FileNotFoundError:
        return "(no log)"


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# --------------------------------------------------------------------------------------------------------
# the common interface


@dataclass
class KubeAccess:
    """A cluster reachable through an admin ``kubeconfig``, driven with ``kubectl``."""

    kubeconfig: Path
    kubectl_path: str
    #: Directory for kubeconfigs this object mints (ServiceAccount tokens).
    scratch: Path
    #: Names of the fake (kwok) nodes registered for the tests.
    nodes: tuple[str, ...] = ()

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, input: str | None = None,
        check: bool = True, timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (admin kubeconfig unless another is given); raises with stderr when ``check``."""
        cmd = [self.kubectl_path, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def apply(self, manifest: str | dict[str, Any], *, kubeconfig: Path | None = None) -> str:
        """``kubectl apply -f -`` of a YAML/JSON string or an object; returns kubectl's output."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("apply", "-f", "-", input=text, kubeconfig=kubeconfig).stdout

    def get(self, kind: str, name: str = "", *, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        """``kubectl get -o json``: one object, or a list when ``name`` is empty."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.kubectl(*args, **kw).stdout)

    def wait_for(
        self, check: Callable[[], T], *, timeout: float = 60, what: str = "condition", interval: float = 0.25
    ) -> T:
        """Poll ``check`` until truthy (see `wait_until`)."""
        return wait_until(check, timeout=timeout, what=what, interval=interval)

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, create: bool = True, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` with a bound token.

        The token comes from the TokenRequest API (``kubectl create token``), so the API server sees the
        real identity ``system:serviceaccount:<namespace>:<name>`` and RBAC applies to it. The
        ServiceAccount is created first when ``create`` (an existing one is kept).
        """
        if create:
            self.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": name, "namespace": namespace}})
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={expiration_seconds}s"
        ).stdout.strip()
        admin = json.loads(self.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
        cluster = admin["clusters"][0]["cluster"]
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user, "namespace": namespace}}],
            "current-context": user,
        }
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)
        return path

    # fake nodes -------------------------------------------------------------------------------------

    def ensure_fake_nodes(
        self, names: Sequence[str], *, gpus: int = 8, cpu: str = "32", memory: str = "256Gi",
        pods: str = "110", timeout: float = 60,
    ) -> None:
        """Register kwok-managed nodes (annotation ``kwok.x-k8s.io/node: fake``, GPU capacity, no taints)
        and wait until kwok reports them Ready."""
        for node in names:
            resources = {"cpu": cpu, "memory": memory, "pods": pods, GPU_RESOURCE: str(gpus)}
            self.apply({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": node,
                    "annotations": {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1]},
                    "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                               "kubernetes.io/arch": "amd64", "type": "kwok"},
                },
                "status": {"capacity": resources, "allocatable": resources},
            })

        def all_ready() -> bool:
            return all(_node_ready(self.get("node", n)) for n in names)

        self.wait_for(all_ready, timeout=timeout, what=f"fake nodes {list(names)} Ready (is kwok running?)")


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _find_kubectl() -> str:
    with contextlib.suppress(Exception):
        path = bin_dir() / "kubectl"
        if os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("kubectl")
    if not found:
        raise ClusterError("no kubectl: run hack/control-plane/build.sh or put kubectl on PATH")
    return found


class ExistingCluster(KubeAccess):
    """A cluster that is already running (kind, k3d, ...), given by its admin kubeconfig."""

    def __init__(self, kubeconfig: Path | str, scratch: Path | None = None) -> None:
        scratch = scratch or Path(tempfile.mkdtemp(prefix="agentrun-kube-"))
        super().__init__(kubeconfig=Path(kubeconfig), kubectl_path=_find_kubectl(), scratch=scratch)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------
# the throwaway control plane


@dataclass
class _Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster(KubeAccess):
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1.

    >>> with Cluster.start() as c:
    ...     c.kubectl("get", "nodes")

    Attributes: ``workdir`` (temp dir: certs, kubeconfigs, etcd data, ``logs/<component>.log``),
    ``kubeconfig`` (admin: client certificate in ``system:masters``), ``server`` (API server URL),
    ``ca_file``, ``nodes`` (fake node names), ``bin`` (binaries directory).
    """

    workdir: Path = Path()
    bin: Path = Path()
    server: str = ""
    ca_file: Path = Path()
    components: list[_Component] = field(default_factory=list)
    keep_workdir: bool = False

    # lifecycle ----------------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, *, bin: Path | None = None, nodes: int = 2, gpus_per_node: int = 8,
        kwok_config: Path | None = None, timeout: float = 120, keep_workdir: bool = False,
    ) -> Cluster:
        """Start everything and wait until it works; on failure everything started is stopped again and
        `ClusterError` carries the last log lines of every component.

        ``kwok_config``: a kwok configuration (e.g. Stage objects) to load; kwok's default stages apply
        to each kind (Node, Pod) the file has no stage for."""
        bin = bin or bin_dir()
        missing = missing_binaries(bin)
        if missing:
            raise ClusterError(f"missing {missing} in {bin}: run {BUILD_SCRIPT}")
        workdir = Path(tempfile.mkdtemp(prefix="agentrun-kube-"))
        cluster = cls(
            kubeconfig=workdir / "admin.kubeconfig", kubectl_path=str(bin / "kubectl"),
            scratch=workdir / "minted", workdir=workdir, bin=bin, ca_file=workdir / "pki" / "ca.crt",
            nodes=tuple(f"kwok-node-{i}" for i in range(nodes)), keep_workdir=keep_workdir,
        )
        try:
            cluster._boot(gpus_per_node=gpus_per_node, kwok_config=kwok_config, timeout=timeout)
        except BaseException as exc:
            report = cluster._logs_report()
            cluster.stop()
            if isinstance(exc, (ClusterError, TimeoutError, subprocess.CalledProcessError)):
                detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else ""
                raise ClusterError(f"control plane did not start: {exc}\n{detail}\n{report}") from exc
            raise
        return cluster

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, grace: float = 10) -> None:
        """Terminate every component (reverse start order), kill what is left after ``grace`` seconds,
        and remove the working directory (unless ``keep_workdir``)."""
        for comp in reversed(self.components):
            if comp.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    comp.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for comp in reversed(self.components):
            try:
                comp.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    comp.proc.kill()
                comp.proc.wait()
        self.components.clear()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # boot ----------------------------------------------------------------------------------------------

    def _boot(self, *, gpus_per_node: int, kwok_config: Path | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        (self.workdir / "logs").mkdir()
        pki = self.workdir / "pki"
        self._make_pki(pki)
        etcd_port, peer_port, api_port, sched_port = (free_port() for _ in range(4))
        self.server = f"https://127.0.0.1:{api_port}"
        self._write_admin_kubeconfig()

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            "--name=agentrun", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=agentrun={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
        ])
        wait_until(lambda: json.loads(_http_get(f"{etcd_url}/health")).get("health") == "true",
                   timeout=left(), what="etcd /health", alive=self._check_alive)

        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}",
            # Loopback is no valid Endpoints address, so the "kubernetes" Service endpoints are not kept
            # (and with no default route the server would find no address to advertise at all).
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            # OpenShift's default: an owner reference with blockOwnerDeletion needs update of the owner's
            # finalizers, so the operator's children prove the chart grants it.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            "--profiling=false",
        ])
        wait_until(lambda: self._api_get("/readyz") == "ok", timeout=left(),
                   what="kube-apiserver /readyz", alive=self._check_alive)

        self._spawn("kube-controller-manager", [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--controllers=*", "--secure-port=0",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true",
            # kwok's node heartbeats compete for the same few cores as everything else; when they are late
            # the node controller marks the pods NotReady for good (kwok does not set Ready again).
            "--node-monitor-grace-period=10m",
            # The default client rate limit (20/s) throttles the Job and ReplicaSet controllers long before
            # the API server is busy when many runs start at once (bench/operator_scale.py).
            "--kube-api-qps=200", "--kube-api-burst=400",
        ])
        self._spawn("kube-scheduler", [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={sched_port}",
            f"--cert-dir={self.workdir / 'scheduler-certs'}",
        ])
        self._spawn("kwok", [
            f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION[0]}={KWOK_ANNOTATION[1]}",
            "--cidr=10.244.0.1/16", "--node-ip=10.255.0.1",
            *([f"--config={kwok_config}"] if kwok_config else []),
        ], env={"HOME": str(self.workdir)})  # kwok also reads ~/.kwok/kwok.yaml when it exists
        # The ServiceAccount controller creates "default" in each namespace; its token controller needs
        # the signing key: both are kube-controller-manager working.
        wait_until(lambda: self._api_get("/api/v1/namespaces/default/serviceaccounts/default"),
                   timeout=left(), what="ServiceAccount default/default (kube-controller-manager)",
                   alive=self._check_alive)
        wait_until(lambda: _http_get(f"https://127.0.0.1:{sched_port}/healthz", insecure=True) == "ok",
                   timeout=left(), what="kube-scheduler /healthz", alive=self._check_alive)
        self.ensure_fake_nodes(self.nodes, gpus=gpus_per_node, timeout=left())

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        cmd = [str(self.bin / name), *args]
        # Die with this process even when it is killed without cleaning up (setpriv: util-linux).
        if shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "KILL", "--", *cmd]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.workdir, start_new_session=True,
                                    env={**os.environ, **env} if env else None)
        self.components.append(_Component(name, proc, log))

    def _check_alive(self) -> None:
        for comp in self.components:
            code = comp.proc.poll()
            if code is not None:
                raise ClusterError(f"{comp.name} exited with code {code}")

    def _logs_report(self, lines: int = 30) -> str:
        parts = []
        for comp in self.components:
            state = "running" if comp.proc.poll() is None else f"exited {comp.proc.returncode}"
            parts.append(f"--- {comp.name} ({state}), last lines of {comp.log}:\n{_tail(comp.log, lines)}")
        return "\n".join(parts)

    def logs(self, name: str, lines: int = 50) -> str:
        """The last ``lines`` lines of a component's log (etcd, kube-apiserver, ..., kwok)."""
        return _tail(self.workdir / "logs" / f"{name}.log", lines)

    # certificates -------------------------------------------------------------------------------------

    def _make_pki(self, pki: Path) -> None:
        pki.mkdir()
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                 "-subj", "/CN=agentrun-test-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=pki)
        self._leaf(pki, "apiserver", "/CN=kube-apiserver", [
            "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
            "extendedKeyUsage=serverAuth",
        ])
        self._leaf(pki, "admin", "/O=system:masters/CN=agentrun-admin", ["extendedKeyUsage=clientAuth"])
        # ServiceAccount token signing key (RS256).
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
        _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)

    @staticmethod
    def _leaf(pki: Path, name: str, subject: str, extensions: Iterable[str]) -> None:
        ext = pki / f"{name}.ext"
        ext.write_text("\n".join(["basicConstraints=critical,CA:FALSE",
                                  "keyUsage=critical,digitalSignature,keyEncipherment", *extensions]) + "\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt", cwd=pki)

    def _write_admin_kubeconfig(self) -> None:
        pki = self.workdir / "pki"
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "agentrun-test", "cluster": {
                "server": self.server, "certificate-authority-data": _b64(pki / "ca.crt")}}],
            "users": [{"name": "admin", "user": {
                "client-certificate-data": _b64(pki / "admin.crt"),
                "client-key-data": _b64(pki / "admin.key")}}],
            "contexts": [{"name": "admin", "context": {"cluster": "agentrun-test", "user": "admin"}}],
            "current-context": "admin",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=1))
        self.kubeconfig.chmod(0o600)

    # direct API access (admin) ------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        pki = self.workdir / "pki"
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _api_get(self, path: str) -> str:
        return _http_get(self.server + path, context=self._ssl())


def _http_get(url: str, *, context: ssl.SSLContext | None = None, insecure: bool = False) -> str:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as exc:
        exc.close()
        raise
