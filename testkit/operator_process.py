"""`agentrun operator` as a child process against a test cluster (`testkit.cluster`), restartable,
killable and readable by a test or a benchmark, and the CRDs it needs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testkit.cluster import KubeAccess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "charts" / "agentrun" / "crds"


@dataclass
class Operator:
    kube: KubeAccess
    log: Path
    liveness_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    reconcile_interval: float = 0.5  # seconds; tests want fast reactions, the default is 2
    args: tuple[str, ...] = ("--standalone",)
    kubeconfig: Path | None = None  # whose identity it runs with; the cluster's admin when None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig or self.kube.kubeconfig), "AGENTRUN_RECONCILE_INTERVAL": str(self.reconcile_interval)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agentrun.cli.main", "operator", *self.args,
                 "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
                 "--metrics-port", str(self.metrics_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_until(self.healthy, timeout=60, what="the operator's liveness endpoint", alive=self.check_alive)
        except BaseException:
            self.kill()  # never leave an orphan behind a failed start
            raise

    def __enter__(self) -> Operator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as response:
            return response.status == 200

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a node failure or an OOM kill would do."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])



def provide_volumes(kube: KubeAccess, count: int, prefix: str = "agentrun-test") -> None:
    """A pool of PersistentVolumes for the runs' claims to bind to (the test cluster has no storage
    provisioner; kube-controller-manager's binder matches each claim to a free volume, as it would to
    volumes an administrator created)."""
    volumes = [{
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{prefix}-{i:04d}"},
        "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{prefix}-{i:04d}"}},
    } for i in range(count)]
    kube.apply({"apiVersion": "v1", "kind": "List", "items": volumes})
