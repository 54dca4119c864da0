"""A process kubelet, for tests: the pods the scheduler binds to its node run as local processes, so that
a test on the real API server sees agentrun's children live real lives (kwok only fakes them).

What it does, as a kubelet would:
- registers a Node (tainted, so that only pods that opt in with a toleration and a node selector land on
  it) and keeps its Ready condition fresh;
- for each pod bound to the node, runs each container's command and args with its environment (values,
  `valueFrom` fieldRef/secretKeyRef/configMapKeyRef, envFrom, `$(VAR)` expansion, the KUBERNETES_SERVICE_*
  variables), in a private mount and PID namespace (`unshare --mount --pid`) where the pod's volumes are
  bind-mounted at their mount paths: a claim at its PersistentVolume's hostPath, emptyDir and ConfigMap, Secret and
  projected volumes (the ServiceAccount token from the TokenRequest API) as files, and an /etc/hosts that
  resolves the namespace's Services and pod hostnames to this machine;
- maps each image to a local environment (`Image`: the directory of its executables and its ENV);
- reports phase, conditions, container states, restart counts and exit codes through pods/status, with
  readiness from the container's own readiness and startup probes (httpGet, tcpSocket);
- restarts containers per restartPolicy, kills a container whose liveness probe fails, and on a pod's
  deletion stops its processes (SIGTERM, then SIGKILL after the grace period) and removes the pod.

What it does not do: network namespaces (every pod shares this machine's ports and reaches the others on
127.0.0.1, so two pods that listen on one port cannot run at once), securityContext (processes run as
this user), resource limits, image pulls, init containers, exec probes, `kubectl logs` (each container's
output is in `<root>/pods/<namespace>_<pod>/<container>.log`). It needs root (mount namespaces) and
`unshare` from util-linux; `available()` says whether this machine has them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentrun.kube import Credentials, Kube, KubeError

NODE_LABEL = "agentrun.dev/testkit-node"
TAINT = {"key": "testkit.agentrun.dev/process-kubelet", "value": "true", "effect": "NoSchedule"}
SYNC_SECONDS = 0.5  # how often pods are listed and probes are due-checked (the kubelet's relist is 1 s)
HEARTBEAT_SECONDS = 20.0
RESTART_BACKOFF_MAX = 10.0  # the kubelet's CrashLoopBackOff grows to 5 minutes; tests cannot wait that long


def available() -> str | None:
    """None when pods can run here, else why not."""
    if os.geteuid() != 0:
        return "the process kubelet needs root for its mount namespaces"
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        return "the process kubelet needs `unshare` and `setpriv` (util-linux)"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"`unshare --mount` fails here: {probe.stderr.strip()}"


@dataclass(frozen=True)
class Image:
    """What an image is on this machine: its executables' directory (first on PATH) and its ENV lines."""

    bin_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)


class PodError(Exception):
    """The pod cannot run here (a missing Secret, an unsupported field); it stays Pending with the reason."""


def image_for(images: Mapping[str, Image], reference: str) -> Image:
    """The environment of an image reference, looked up by its repository (without tag or digest)."""
    repository = reference.rsplit("@", 1)[0]
    repository = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
    if repository not in images:
        raise PodError(f"image {reference}: the process kubelet maps only {sorted(images)}")
    return images[repository]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: a defined variable's value, `$$` an escaped `$`, anything else kept."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def field_value(pod: dict[str, Any], path: str) -> str:
    """A downward-API fieldRef (`metadata.namespace`, `metadata.annotations['k']`, `status.podIP`, ...)."""
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if keyed:
        return pod["metadata"].get(keyed.group(1), {}).get(keyed.group(2), "")
    simple = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
              "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": pod["spec"].get("nodeName", ""),
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
    if path not in simple:
        raise PodError(f"fieldRef {path!r} is not supported by the process kubelet")
    return simple[path]


@dataclass
class Probe:
    """One container probe's schedule and counts (`spec` is the corev1.Probe)."""

    spec: dict[str, Any]
    ports: Mapping[str, int]
    due: float = 0.0
    failures: int = 0
    successes: int = 0

    def __post_init__(self) -> None:
        self.due = time.monotonic() + self.spec.get("initialDelaySeconds", 0)

    def check(self) -> bool | None:
        """None when not due; else the result of probing now (also counted)."""
        if time.monotonic() < self.due:
            return None
        self.due = time.monotonic() + self.spec.get("periodSeconds", 10)
        ok = self._probe(self.spec.get("timeoutSeconds", 1))
        self.failures, self.successes = (0, self.successes + 1) if ok else (self.failures + 1, 0)
        return ok

    def _port(self, port: int | str) -> int:
        return self.ports[port] if isinstance(port, str) else port

    def _probe(self, timeout: float) -> bool:
        if "httpGet" in self.spec:
            get = self.spec["httpGet"]
            url = f"http://127.0.0.1:{self._port(get['port'])}{get.get('path', '/')}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    return 200 <= response.status < 400
            except (urllib.error.URLError, OSError):  # HTTPError (a 503) is a URLError
                return False
        if "tcpSocket" in self.spec:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self._port(self.spec["tcpSocket"]["port"])), timeout=timeout):
                return True
            return False
        raise PodError(f"probe {sorted(self.spec)} is not supported by the process kubelet (httpGet, tcpSocket)")


@dataclass
class Container:
    """One container of a pod: its process, its probes and what its status reports."""

    spec: dict[str, Any]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    restarts: int = 0
    last_exit: dict[str, Any] | None = None  # the `terminated` state of the previous run
    exited: dict[str, Any] | None = None  # the `terminated` state of this run, once it ended
    restart_at: float = 0.0
    ready: bool = False
    started: bool = False  # the startup probe succeeded (or there is none)
    probes: dict[str, Probe] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec["name"]

    def ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in self.spec.get("ports", []) if "name" in p}

    def launch(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as out:
            out.write(f"--- process kubelet: start {now()}: {shlex.join(argv[-40:])}\n".encode())
            out.flush()
            self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at, self.exited, self.ready = now(), None, False
        self.started = "startupProbe" not in self.spec
        self.probes = {kind: Probe(self.spec[kind], self.ports())
                       for kind in ("startupProbe", "readinessProbe", "livenessProbe") if kind in self.spec}

    def poll(self) -> None:
        """Notice an exit, and run the probes that are due."""
        if self.process is None or self.exited is not None:
            return
        code = self.process.poll()
        if code is not None:
            exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as runtimes report
            self.exited = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                           "startedAt": self.started_at, "finishedAt": now()}
            self.ready = False
            return
        if not self.started:
            if self.probes["startupProbe"].check():
                self.started = True
            elif self.probes["startupProbe"].failures >= self.probes["startupProbe"].spec.get("failureThreshold", 3):
                self.kill(reason="startup probe failed")
            return
        readiness = self.probes.get("readinessProbe")
        if readiness is None:
            self.ready = True
        elif (result := readiness.check()) is not None:
            if result and readiness.successes >= readiness.spec.get("successThreshold", 1):
                self.ready = True
            elif not result and readiness.failures >= readiness.spec.get("failureThreshold", 3):
                self.ready = False
        liveness = self.probes.get("livenessProbe")
        if liveness is not None and liveness.check() is False \
                and liveness.failures >= liveness.spec.get("failureThreshold", 3):
            self.kill(reason="liveness probe failed")

    def kill(self, reason: str, grace: float = 5.0) -> None:
        """SIGTERM to the container's PID 1 (which, as in any container, ignores it unless it handles it),
        then SIGKILL after `grace` seconds, which ends its PID namespace and everything in it."""
        if self.process is None or self.process.poll() is not None:
            return
        with self.log.open("ab") as out:
            out.write(f"--- process kubelet: {reason}: stopping {now()}\n".encode())
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            # unshare's one child, the namespace's PID 1; none yet while unshare starts it, none left once it exited
            for pid in children.read_text().split()[:1]:
                os.kill(int(pid), signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # unshare, whose death kills the namespace
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.exited is not None:
            state = {"terminated": self.exited}
        elif self.process is None:
            state = {"waiting": {"reason": "CrashLoopBackOff" if self.restarts else "ContainerCreating"}}
        else:
            state = {"running": {"startedAt": self.started_at}}
        status = {"name": self.name, "image": self.spec["image"], "imageID": "", "ready": self.ready,
                  "started": self.process is not None and self.exited is None and self.started,
                  "restartCount": self.restarts, "state": state,
                  "containerID": f"process://{self.process.pid}" if self.process else ""}
        if self.last_exit is not None:
            status["lastState"] = {"terminated": self.last_exit}
        return status


class PodRunner:
    """One pod on the node: its sandbox directory, volumes, /etc/hosts and containers."""

    def __init__(self, kubelet: ProcessKubelet, pod: dict[str, Any]) -> None:
        self.kubelet, self.pod = kubelet, pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir = kubelet.root / "pods" / f"{self.namespace}_{self.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.containers = [Container(c, self.dir / f"{c['name']}.log") for c in pod["spec"]["containers"]]
        self.started_at = now()
        self.error: str | None = None
        self.launched = False
        self.sent: dict[str, Any] | None = None
        self.volumes: dict[str, Path] = {}

    # set-up ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Make the volumes and start every container; a `PodError` leaves the pod Pending to retry."""
        if self.pod["spec"].get("initContainers"):
            raise PodError("init containers are not supported by the process kubelet")
        for volume in self.pod["spec"].get("volumes", []):
            self.volumes[volume["name"]] = self._volume(volume)
        self.write_hosts()
        for container in self.containers:
            self._launch(container)

    def _volume(self, volume: dict[str, Any]) -> Path:
        kube, ns = self.kubelet.kube, self.namespace
        if "persistentVolumeClaim" in volume:
            claim = kube.get("v1", "PersistentVolumeClaim", ns, volume["persistentVolumeClaim"]["claimName"])
            bound = (claim or {}).get("spec", {}).get("volumeName")
            if not bound:
                raise PodError(f"claim {volume['persistentVolumeClaim']['claimName']} is not bound yet")
            pv = kube.get("v1", "PersistentVolume", None, bound) or {}
            host_path = pv.get("spec", {}).get("hostPath", {}).get("path")
            if not host_path:
                raise PodError(f"volume {bound} has no hostPath: the process kubelet mounts only those")
            Path(host_path).mkdir(parents=True, exist_ok=True)
            return Path(host_path)
        if "hostPath" in volume:
            return Path(volume["hostPath"]["path"])
        directory = self.dir / "volumes" / volume["name"]
        directory.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            return directory
        sources = volume["projected"]["sources"] if "projected" in volume else [volume]
        for source in sources:
            for relative, content in self._files(source).items():
                target = directory / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        return directory

    def _files(self, source: dict[str, Any]) -> dict[str, bytes]:
        """The files one volume source (configMap, secret, serviceAccountToken, downwardAPI) projects."""
        kube, ns = self.kubelet.kube, self.namespace
        if "serviceAccountToken" in source:
            request = source["serviceAccountToken"]
            answer = kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/"
                                  f"{self.pod['spec'].get('serviceAccountName', 'default')}/token", json={
                                      "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                      "spec": {"audiences": [request["audience"]] if request.get("audience") else None,
                                               "expirationSeconds": request.get("expirationSeconds", 3607),
                                               "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                                                  "name": self.name, "uid": self.uid}}})
            return {request["path"]: answer["status"]["token"].encode()}
        if "downwardAPI" in source:
            return {item["path"]: field_value(self.pod, item["fieldRef"]["fieldPath"]).encode()
                    for item in source["downwardAPI"]["items"]}
        kind, key = ("ConfigMap", "configMap") if "configMap" in source else ("Secret", "secret")
        ref = source[key]
        name = ref.get("name") or ref.get("secretName")
        obj = kube.get("v1", kind, ns, name)
        if obj is None:
            if ref.get("optional"):
                return {}
            raise PodError(f"{kind} {name} not found")
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()} if kind == "ConfigMap" else \
            {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        items = ref.get("items")
        return {item["path"]: data[item["key"]] for item in items} if items else data

    def write_hosts(self) -> None:
        """/etc/hosts for the pod (`ProcessKubelet.hosts`), rewritten in place (the bind mount keeps the
        inode), so that Services made after the pod started resolve too."""
        text = self.kubelet.hosts(self.namespace)
        hosts = self.dir / "hosts"
        if not hosts.is_file() or hosts.read_text() != text:
            with hosts.open("w") as handle:  # same inode
                handle.write(text)

    def _environment(self, container: dict[str, Any], image: Image) -> dict[str, str]:
        kube, ns = self.kubelet.kube, self.namespace
        env = {"PATH": f"{image.bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.dir / "home"),
               "HOSTNAME": self.pod["spec"].get("hostname", self.name), **image.env,
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.kubelet.api_port)}
        (self.dir / "home").mkdir(exist_ok=True)
        for source in container.get("envFrom", []):
            kind, key = ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
            obj = kube.get("v1", kind, ns, source[key]["name"])
            if obj is None and not source[key].get("optional"):
                raise PodError(f"{kind} {source[key]['name']} (envFrom) not found")
            data = (obj or {}).get("data") or {}
            env.update({source.get("prefix", "") + k: v if kind == "ConfigMap" else base64.b64decode(v).decode()
                        for k, v in data.items()})
        for var in container.get("env", []):
            if "value" in var or "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value", ""), env)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                env[var["name"]] = field_value(self.pod, source["fieldRef"]["fieldPath"])
                continue
            kind, key = ("Secret", "secretKeyRef") if "secretKeyRef" in source else ("ConfigMap", "configMapKeyRef")
            if key not in source:
                raise PodError(f"env {var['name']}: {sorted(source)} is not supported by the process kubelet")
            ref = source[key]
            data = ((kube.get("v1", kind, ns, ref["name"]) or {}).get("data") or {})
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise PodError(f"env {var['name']}: key {ref['key']} of {kind} {ref['name']} not found")
            value = data[ref["key"]]
            env[var["name"]] = base64.b64decode(value).decode() if kind == "Secret" else value
        return env

    def _launch(self, container: Container) -> None:
        spec = container.spec
        image = self.kubelet.image(spec["image"])
        env = self._environment(spec, image)
        command = [expand(part, env) for part in [*spec.get("command", []), *spec.get("args", [])]]
        if not spec.get("command"):
            raise PodError(f"container {spec['name']}: the process kubelet knows no image entrypoints; give a command")
        workdir = Path(spec.get("workingDir") or self.dir / "home")
        mounts = [(self.volumes[m["name"]] / m.get("subPath", ""), m["mountPath"], m.get("readOnly", False))
                  for m in spec.get("volumeMounts", [])]
        mounts.append((self.dir / "hosts", "/etc/hosts", False))
        script = ["set -e"]
        for source, target, read_only in mounts:
            self.kubelet.mount_point(Path(target), directory=source.is_dir())
            script.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
            if read_only:
                script.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
        script.append(f"cd {shlex.quote(str(workdir))}")
        script.append('exec "$@"')
        # A mount namespace for the volumes; a PID namespace so that, as in a container, the command is
        # PID 1 and all it started dies with it (torchrun's workers leave its process group); setpriv: the
        # container dies with this kubelet's thread even when the test process is killed.
        argv = ["setpriv", "--pdeathsig", "KILL", "--", "unshare", "--mount", "--propagation", "private", "--pid",
                "--fork", "--kill-child=SIGKILL", "--mount-proc", "--", "sh", "-c", "\n".join(script), "sh", *command]
        container.launch(argv, env, self.dir)

    # life ------------------------------------------------------------------------------------------

    def sync(self, pod: dict[str, Any]) -> None:
        """One round: the pod as the API server has it now; start, probe, restart, stop, report."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.terminate(pod["metadata"].get("deletionGracePeriodSeconds", 30))
            self.report()
            with contextlib.suppress(KubeError):
                self.kubelet.kube.request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                                          json={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
            return
        if not self.launched:
            try:
                self.start()
                self.launched, self.error = True, None
            except (PodError, KubeError) as exc:
                self.error = str(exc)
        else:
            self.write_hosts()
        policy = pod["spec"].get("restartPolicy", "Always")
        for container in self.containers:
            container.poll()
            code = container.exited["exitCode"] if container.exited else None
            if code is not None and (policy == "Always" or policy == "OnFailure" and code != 0):
                if not container.restart_at:
                    container.restart_at = time.monotonic() + min(2.0 ** container.restarts, RESTART_BACKOFF_MAX)
                elif time.monotonic() >= container.restart_at:
                    container.restarts, container.last_exit, container.restart_at = container.restarts + 1, container.exited, 0.0
                    container.process = None
                    try:
                        self._launch(container)
                    except (PodError, KubeError) as exc:
                        self.error = str(exc)
        self.report()

    def terminate(self, grace: float) -> None:
        for container in self.containers:
            container.kill(reason="pod deleted", grace=min(grace, 30))
            container.poll()

    def phase(self) -> str:
        if not self.launched:
            return "Pending"
        policy = self.pod["spec"].get("restartPolicy", "Always")
        codes = [c.exited["exitCode"] if c.exited else None for c in self.containers]
        if all(code is not None for code in codes):
            if all(code == 0 for code in codes) and policy != "Always":
                return "Succeeded"
            if policy == "Never" or self.pod["metadata"].get("deletionTimestamp"):
                return "Failed"
        return "Running"

    def report(self) -> None:
        """pods/status, written only when it changed."""
        phase = self.phase()
        ready = phase == "Running" and all(c.ready for c in self.containers)
        status = {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started_at,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": str(ready)},
                {"type": "Ready", "status": str(ready)},
            ],
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.error is not None:
            status["message"], status["reason"] = self.error, "ProcessKubeletError"
        if status == self.sent:
            return
        stamped = {**status, "conditions": [{**c, "lastTransitionTime": now()} for c in status["conditions"]]}
        try:
            self.kubelet.kube.merge_patch("v1", "Pod", self.namespace, self.name, {"status": stamped}, "status")
            self.sent = status
        except KubeError as exc:
            if exc.status != 404:
                raise

    def finished(self) -> bool:
        return all(c.process is None or c.process.poll() is not None for c in self.containers)


class ProcessKubelet:
    """The kubelet of one node named `node`, against the API server of `kubeconfig`'s admin credentials.

    >>> with ProcessKubelet(cluster, {"ghcr.io/agentrun/trainer": Image(venv_bin)}, root=tmp) as kubelet:
    ...     # pods with nodeSelector {NODE_LABEL: kubelet.node} and a toleration of TAINT run here
    """

    def __init__(self, credentials: Credentials, images: Mapping[str, Image], root: Path,
                 node: str = "process-node-0", capacity: Mapping[str, str] | None = None) -> None:
        self.kube = Kube(credentials)
        self.api_port = int(credentials.server.rsplit(":", 1)[1])
        self.images, self.root, self.node = dict(images), root, node
        self.capacity = dict(capacity or {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "8"})
        self.pods: dict[str, PodRunner] = {}
        self.created_mount_points: list[Path] = []
        self._hosts: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # what went wrong in the sync loop (a test can assert it is empty)

    def image(self, reference: str) -> Image:
        return image_for(self.images, reference)

    def mount_point(self, target: Path, directory: bool) -> None:
        """Make `target` exist on this machine's filesystem (a bind mount needs it); remembered, to be
        removed at the end when it was made here."""
        if target.exists():
            return
        missing = [p for p in [target, *target.parents] if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir() if directory else target.touch()
        self.created_mount_points.extend(missing)

    # lifecycle --------------------------------------------------------------------------------------

    def __enter__(self) -> ProcessKubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": self.node, "labels": {"kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux",
                                          "kubernetes.io/arch": "amd64", NODE_LABEL: self.node}},
            "spec": {"taints": [TAINT]}})
        self.heartbeat()
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{self.node}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        for runner in self.pods.values():
            runner.terminate(grace=5)
        self.pods.clear()
        with contextlib.suppress(KubeError):
            self.kube.delete("v1", "Node", None, self.node)
        for path in sorted(self.created_mount_points, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        self.kube.close()

    def heartbeat(self) -> None:
        stamp = now()
        self.kube.merge_patch("v1", "Node", None, self.node, {"status": {
            "capacity": self.capacity, "allocatable": self.capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "agentrun testkit process kubelet", "lastHeartbeatTime": stamp,
                            "lastTransitionTime": stamp}],
            "nodeInfo": {"kubeletVersion": "v0.0.0-testkit", "containerRuntimeVersion": "process://",
                         "operatingSystem": "linux", "architecture": "amd64"}}}, "status")

    def _loop(self) -> None:
        beat = time.monotonic()
        while not self._stop.wait(SYNC_SECONDS):
            try:
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    self.heartbeat()
                    beat = time.monotonic()
                self.sync()
            except Exception as exc:  # noqa: BLE001 - a kubelet keeps going; the test sees `errors`
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def hosts(self, namespace: str) -> str:
        """/etc/hosts for a pod in `namespace`: its Services and the hostnames of its pods under a
        subdomain resolve to this machine, where their processes listen (read once per sync)."""
        if namespace not in self._hosts:
            names = ["localhost"]
            for service in self.kube.list("v1", "Service", namespace):
                svc = service["metadata"]["name"]
                names += [svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local"]
            for runner in self.pods.values():
                spec = runner.pod["spec"]
                if runner.namespace == namespace and spec.get("hostname") and spec.get("subdomain"):
                    fqdn = f"{spec['hostname']}.{spec['subdomain']}.{namespace}.svc"
                    names += [fqdn, f"{fqdn}.cluster.local"]
            self._hosts[namespace] = "".join(f"127.0.0.1\t{name}\n" for name in dict.fromkeys(names))
        return self._hosts[namespace]

    def sync(self) -> None:
        listed = self.kube.request("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={self.node}"})
        self._hosts = {}
        seen = set()
        for pod in listed.get("items", []):
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if uid not in self.pods:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue  # finished before this kubelet knew it
                self.pods[uid] = PodRunner(self, pod)
            runner = self.pods[uid]
            if runner.phase() in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp") \
                    and runner.sent is not None and runner.sent["phase"] == runner.phase():
                continue  # over, and reported
            runner.sync(pod)
        for uid in [uid for uid in self.pods if uid not in seen]:  # removed without this kubelet's help
            self.pods.pop(uid).terminate(grace=5)

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        path = self.root / "pods" / f"{namespace}_{pod}" / f"{container}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def process(self, namespace: str, pod_prefix: str) -> subprocess.Popen[bytes]:
        """The running process of the first container of the live pod whose name starts with `pod_prefix`
        (what a test kills to fault a pod's main process)."""
        for runner in self.pods.values():
            container = runner.containers[0]
            if runner.namespace == namespace and runner.name.startswith(pod_prefix) and container.process \
                    and container.process.poll() is None and not runner.pod["metadata"].get("deletionTimestamp"):
                return container.process
        raise LookupError(f"no running pod {pod_prefix}* in {namespace} on {self.node}")

    def describe(self) -> str:
        """Every pod's state and the last lines of each container's log, for a failing test's report."""
        parts = []
        for runner in self.pods.values():
            for container in runner.containers:
                tail = "\n".join(container.log.read_text(errors="replace").splitlines()[-25:]) \
                    if container.log.is_file() else "(no output)"
                parts.append(f"--- {runner.namespace}/{runner.name} [{container.name}] {json.dumps(container.status())}"
                             f"{' error: ' + runner.error if runner.error else ''}\n{tail}")
        return "\n".join(parts + [f"sync errors: {self.errors[-5:]}"])
