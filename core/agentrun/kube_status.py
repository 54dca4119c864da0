"""Progress into an AgentTrainingRun's status, from the run's own pods (DESIGN §5): each writer patches
only its keys under `status.progress`, with the pod's ServiceAccount, whose Role allows exactly this
run's status (and Events) and nothing else. A failed call is logged, never fatal: progress is not worth
a step."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from agentrun.kube import Kube, KubeError
from agentrun.spec.models import API_VERSION, KIND

log = logging.getLogger(__name__)


class StatusWriter:
    def __init__(self, kube: Kube, namespace: str, run: str) -> None:
        self.kube, self.namespace, self.run = kube, namespace, run

    def progress(self, **keys: Any) -> bool:
        """Merge `keys` (camelCase, as in the CRD) into status.progress; False if the server refused."""
        try:
            self.kube.merge_patch(API_VERSION, KIND, self.namespace, self.run, {"status": {"progress": keys}},
                                  subresource="status")
        except KubeError as exc:
            log.warning("could not report progress to %s/%s: %s", self.namespace, self.run, exc)
            return False
        return True

    def event(self, reason: str, message: str, event_type: str = "Warning") -> bool:
        """An Event on the run (what `kubectl describe atr` lists); False if the server refused."""
        try:
            run = self.kube.get(API_VERSION, KIND, self.namespace, self.run)
            if run is None:
                return False
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.kube.create({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{self.run}.", "namespace": self.namespace},
                "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": self.run,
                                   "namespace": self.namespace, "uid": run["metadata"]["uid"]},
                "reason": reason, "message": message[:1024], "type": event_type,
                "source": {"component": "agentrun-learner"}, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            })  # fmt: skip
        except KubeError as exc:
            log.warning("could not post event %s on %s/%s: %s", reason, self.namespace, self.run, exc)
            return False
        return True
