"""Progress into an AgentTrainingRun's status, from the run's own pods (DESIGN §5): each writer patches
only its keys under `status.progress`, with the pod's ServiceAccount, whose Role allows exactly this
run's status and nothing else. A failed patch is logged, never fatal: progress is not worth a step."""

from __future__ import annotations

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
