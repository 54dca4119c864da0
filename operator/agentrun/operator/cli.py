"""`agentrun operator`: run the kopf operator (what the Helm chart's Deployment runs)."""

from __future__ import annotations

import click


@click.command("operator")
@click.option("--namespace", "namespaces", multiple=True,
              help="Watch only these namespaces (repeatable); all namespaces when none is given.")
@click.option("--standalone", is_flag=True, help="Do not coordinate with other replicas (no peering).")
@click.option("--peering", default="agentrun", show_default=True,
              help="Name of the KopfPeering object replicas coordinate through: one is active, the others wait.")
@click.option("--priority", type=int, default=None,
              help="Peering priority of this replica (the highest active one wins); random when omitted.")
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True,
              help="Liveness endpoint for the pod's probe.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9090, show_default=True,
              help="Serve agentrun_operator_* Prometheus metrics on this port (0: off).")
def operator(namespaces: tuple[str, ...], standalone: bool, peering: str, priority: int | None, liveness: str,
             metrics_port: int) -> None:
    """Reconcile AgentTrainingRuns into their workloads (DESIGN §5) until stopped.

    Credentials come from the pod's ServiceAccount, or from KUBECONFIG / ~/.kube/config outside a cluster.
    """
    import os
    import random

    import kopf

    from agentrun.operator import handlers  # noqa: F401  (registers the handlers)

    os.environ.setdefault("AGENTRUN_OPERATOR_METRICS_PORT", str(metrics_port))
    kopf.configure(verbose=False)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=standalone,
        peering_name=None if standalone else peering,
        priority=priority if priority is not None else random.randint(1, 2**30),
        liveness_endpoint=liveness,
    )
