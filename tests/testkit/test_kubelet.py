"""The process kubelet's pure parts, held to the Kubernetes rules they copy (the end-to-end test covers the
rest): `$(VAR)` expansion, downward-API fields, which local environment an image reference maps to; and
how it stops a container."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import kubelet

POD = {"metadata": {"name": "run-learner-0-abcde", "namespace": "team", "uid": "u-1",
                    "annotations": {"batch.kubernetes.io/job-completion-index": "3"}},
       "spec": {"nodeName": "process-0", "serviceAccountName": "run-workload"}}


def test_variables_expand_as_kubernetes_expands_them() -> None:
    env = {"JOB_COMPLETION_INDEX": "3", "PORT": "29500"}
    assert kubelet.expand("--node-rank=$(JOB_COMPLETION_INDEX) --port=$(PORT)", env) == "--node-rank=3 --port=29500"
    assert kubelet.expand("$(UNDEFINED) stays, $$(PORT) is escaped, $PORT is not a reference", env) == \
        "$(UNDEFINED) stays, $(PORT) is escaped, $PORT is not a reference"


def test_downward_api_fields_come_from_the_pod() -> None:
    assert kubelet.field_value(POD, "metadata.namespace") == "team"
    assert kubelet.field_value(POD, "metadata.annotations['batch.kubernetes.io/job-completion-index']") == "3"
    assert kubelet.field_value(POD, "metadata.labels['absent']") == ""
    with pytest.raises(kubelet.PodError, match="status.hostIPs"):
        kubelet.field_value(POD, "status.hostIPs")


def test_an_image_maps_by_repository_whatever_its_tag_or_digest(tmp_path: Path) -> None:
    trainer = kubelet.Image(tmp_path / "venv" / "bin")
    images = {"ghcr.io/agentrun/trainer": trainer, "localhost:5000/serving": kubelet.Image(tmp_path)}
    assert kubelet.image_for(images, "ghcr.io/agentrun/trainer:0.1.0") is trainer
    assert kubelet.image_for(images, "ghcr.io/agentrun/trainer@sha256:0123") is trainer
    assert kubelet.image_for(images, "localhost:5000/serving").bin_dir == tmp_path  # a registry port is no tag
    with pytest.raises(kubelet.PodError, match="maps only"):
        kubelet.image_for(images, "ghcr.io/agentrun/operator:0.1.0")


def test_a_container_whose_namespace_has_no_pid_one_is_still_killed(tmp_path: Path) -> None:
    """Deleting a pod whose PID 1 has not started yet, or has already exited while unshare lingers: no child
    to send SIGTERM to (this raised IndexError and left the rest of the kubelet's pods running), so the
    process group gets SIGKILL after the grace period."""
    container = kubelet.Container(spec={"name": "c"}, log=tmp_path / "c.log")
    container.launch(["sleep", "600"], env={}, cwd=tmp_path)  # a process with no children, as unshare then
    container.kill(reason="pod deleted", grace=0.1)
    assert container.process is not None and container.process.returncode == -9
    assert "pod deleted: stopping" in (tmp_path / "c.log").read_text()
