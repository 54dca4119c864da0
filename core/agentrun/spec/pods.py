"""Where a run's pods go and what they carry beyond agentrun's own settings (cluster mode): node
selectors, tolerations, affinity, priority, image pull secrets and extra environment, as Kubernetes
names them. `spec.pods.all` applies to every pod and each component's section adds to it; the chart's
`runPods` value is the operator-wide default under both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from agentrun.spec.base import SpecModel

# Names of variables that hold credentials: they come from a Secret, never as a literal in a spec.
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_?KEY|CREDENTIALS)", re.IGNORECASE)


class Toleration(SpecModel):
    """A `corev1.Toleration`."""

    key: str | None = None
    """Taint key; empty with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """How `value` is compared (Equal when unset)."""
    value: str | None = None
    """Taint value, for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; unset tolerates every effect."""
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None
    """How long a NoExecute taint is tolerated before eviction."""


class KeyRef(SpecModel):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the Secret or ConfigMap."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """Key within it."""
    optional: bool | None = None
    """Start the pod even when it is missing."""


class EnvVarSource(SpecModel):
    secret_key_ref: KeyRef | None = None
    """A key of a Secret (tokens, API keys)."""
    config_map_key_ref: KeyRef | None = None
    """A key of a ConfigMap."""


class EnvVar(SpecModel):
    """A `corev1.EnvVar`: a literal value, or one from a Secret or ConfigMap."""

    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    """Variable name."""
    value: Annotated[str, Field(max_length=32768)] | None = None
    """Literal value; credentials (names with TOKEN, SECRET, PASSWORD, API_KEY) must use valueFrom."""
    value_from: EnvVarSource | None = None
    """Where the value comes from instead."""

    @field_validator("name")
    @classmethod
    def _not_agentruns_own(cls, name: str) -> str:
        if name.startswith("AGENTRUN_"):
            raise ValueError(f"env {name}: AGENTRUN_* variables are set by the operator; use another name")
        return name

    @field_validator("value")
    @classmethod
    def _no_literal_credentials(cls, value: str | None, info: Any) -> str | None:
        name = info.data.get("name", "")
        if value and SECRET_NAME.search(name):
            raise ValueError(f"env {name}: credentials never go in a spec; put it in a Secret and use "
                             f"valueFrom.secretKeyRef")
        return value


class NameRef(SpecModel):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the Secret or ConfigMap."""
    optional: bool | None = None
    """Start the pod even when it is missing."""


class EnvFromSource(SpecModel):
    """A `corev1.EnvFromSource`: every key of a Secret or ConfigMap as a variable."""

    secret_ref: NameRef | None = None
    """A Secret."""
    config_map_ref: NameRef | None = None
    """A ConfigMap."""
    prefix: Annotated[str, Field(max_length=256)] | None = None
    """Prepended to every key."""


class PodOverrides(SpecModel):
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = {}
    """Node labels the pods require (`nodeSelector`), e.g. a GPU pool's."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = []
    """Taints the pods tolerate (tainted GPU nodes)."""
    affinity: dict[str, Any] | None = None
    """A `corev1.Affinity`, passed through as written."""
    priority_class_name: Annotated[str, Field(max_length=253)] | None = None
    """PriorityClass of the pods."""
    image_pull_secrets: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=16)] = []
    """Names of docker-registry Secrets for a private registry."""
    env: Annotated[list[EnvVar], Field(max_length=128)] = []
    """Extra environment variables (e.g. HF_TOKEN from a Secret); a name set twice keeps the last."""
    env_from: Annotated[list[EnvFromSource], Field(max_length=16)] = []
    """Secrets or ConfigMaps whose every key becomes a variable."""

    def under(self, other: PodOverrides) -> PodOverrides:
        """`other` on top of these: its maps and lists add to these, its single values replace them."""
        env = {var.name: var for var in [*self.env, *other.env]}
        return PodOverrides(
            node_selector={**self.node_selector, **other.node_selector},
            tolerations=[*self.tolerations, *(t for t in other.tolerations if t not in self.tolerations)],
            affinity=other.affinity if other.affinity is not None else self.affinity,
            priority_class_name=other.priority_class_name or self.priority_class_name,
            image_pull_secrets=list(dict.fromkeys([*self.image_pull_secrets, *other.image_pull_secrets])),
            env=list(env.values()),
            env_from=[*self.env_from, *other.env_from],
        )


class PodsSpec(SpecModel):
    all: PodOverrides = PodOverrides()
    """For every pod of the run."""
    serving: PodOverrides = PodOverrides()
    """The vLLM server's pods, on top of `all`."""
    learner: PodOverrides = PodOverrides()
    """The learner's pods, on top of `all`."""
    evaluation: PodOverrides = PodOverrides()
    """The evaluation Jobs' pods, on top of `all`."""
    prepare: PodOverrides = PodOverrides()
    """The prepare Job's pod, on top of `all`."""

    def of(self, component: Literal["serving", "learner", "evaluation", "prepare"]) -> PodOverrides:
        return self.all.under(getattr(self, component))
