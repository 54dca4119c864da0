"""Operator at scale: N AgentTrainingRuns applied at once to a throwaway control plane with kwok nodes;
time until every run is Running, reconcile duration p50/p99 (from the operator's own histogram), the
operator's peak RSS, and what the runs cost once idle: writes to the operator's kinds per run per minute,
counted by the API server itself (`apiserver_request_total`; the controllers write only the status
subresources of Jobs and Deployments, which are left out).

    PYTHONPATH=. python bench/operator_scale.py --runs 200 --out bench/results/operator_scale.json

Pods follow testkit/kwok-stages.yaml plus bench/kwok-prepare-completes.yaml: prepare pods succeed as soon
as they run; learner and server pods keep running. The runs are created with one `kubectl create` and the
clock starts before it. The runs ask for no GPUs and little memory so that
scheduling is not what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from testkit.cluster import Cluster, bin_dir
from testkit.operator_process import CRDS, Operator, provide_volumes

ROOT = Path(__file__).resolve().parent.parent
STAGES = (ROOT / "testkit" / "kwok-stages.yaml", ROOT / "bench" / "kwok-prepare-completes.yaml")


def run(index: int, namespace: str) -> dict[str, Any]:
    small = {"gpus": 0, "cpu": "100m", "memory": "128Mi"}
    return {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun",
        "metadata": {"name": f"scale-{index:04d}", "namespace": namespace},
        "spec": {"model": {"base": "Qwen/Qwen3-4B"}, "serving": {"resources": small},
                 "learner": {"resources": small}, "storage": {"pvc": {"size": "1Gi"}}},
    }


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets."""
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-9)
        lower_bound, lower_count = bound, count
    return lower_bound


def reconcile_buckets(metrics_text: str) -> list[tuple[float, float]]:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "agentrun_operator_reconcile_duration_seconds":
            buckets = [(float(s.labels["le"]), s.value) for s in family.samples
                       if s.name.endswith("_bucket") and s.labels.get("result") == "ok"]
            return sorted(buckets)
    raise RuntimeError("the operator exported no reconcile histogram")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (so the bench can say who used the cores)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


WRITES = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
OPERATOR_KINDS = {"agenttrainingruns", "jobs", "deployments", "services", "configmaps", "serviceaccounts", "roles",
                  "rolebindings", "persistentvolumeclaims", "events"}


def requests(cluster: Cluster) -> list[tuple[dict[str, str], float]]:
    """The API server's own request counts (`apiserver_request_total`): (labels, count) per series."""
    return [(sample.labels, sample.value)
            for family in text_string_to_metric_families(cluster.kubectl("get", "--raw", "/metrics").stdout)
            if family.name == "apiserver_request"
            for sample in family.samples if sample.name.endswith("_total")]


def operator_writes(cluster: Cluster) -> float:
    """Writes the API server has counted to the kinds the operator writes (runs' status included)."""
    return sum(count for labels, count in requests(cluster)
               if labels.get("verb") in WRITES and labels.get("resource") in OPERATOR_KINDS
               and (not labels.get("subresource") or labels.get("resource") == "agenttrainingruns"))


def requests_by_kind(cluster: Cluster) -> dict[str, dict[str, int]]:
    """Every client's requests so far, as "resource[/subresource]" -> verb -> count, busiest first: where the
    API server's time went (watches are counted once, when they start)."""
    table: dict[str, dict[str, int]] = {}
    for labels, count in requests(cluster):
        kind = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        verbs = table.setdefault(kind or "(non-resource)", {})
        verbs[labels.get("verb", "")] = verbs.get(labels.get("verb", ""), 0) + int(count)
    return dict(sorted(table.items(), key=lambda item: -sum(item[1].values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--idle-seconds", type=float, default=60, help="how long to count the idle runs' writes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "operator_scale.json")
    args = parser.parse_args()
    stages = Path(tempfile.mkdtemp(prefix="agentrun-bench-")) / "stages.yaml"
    stages.write_text("\n---\n".join(path.read_text() for path in STAGES))
    with Cluster.start(bin=bin_dir(), nodes=8, kwok_config=stages) as cluster:  # 110 pods per node
        cluster.kubectl("apply", "--server-side", "-f", str(CRDS))
        cluster.kubectl("wait", "--for=condition=Established", "crd/agenttrainingruns.agentrun.dev")
        cluster.kubectl("create", "namespace", "scale")
        provide_volumes(cluster, args.runs)
        operator = Operator(cluster, cluster.workdir / "operator.log", reconcile_interval=2.0)  # the default
        operator.start()
        try:
            items = [run(i, "scale") for i in range(args.runs)]
            started = time.perf_counter()
            cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            applied = time.perf_counter() - started
            running, samples = 0, []
            while running < args.runs:
                if time.perf_counter() - started > args.timeout:
                    break
                phases = cluster.kubectl("get", "agenttrainingruns", "-n", "scale",
                                         "-o", "jsonpath={.items[*].status.phase}").stdout.split()
                running = phases.count("Running")
                samples.append((round(time.perf_counter() - started, 2), running))
                time.sleep(1)  # a sampling period of the measurement, not a wait for a condition
            all_running = time.perf_counter() - started
            ramp_requests = requests_by_kind(cluster)
            before, idle_started = operator_writes(cluster), time.perf_counter()
            if not before:  # creating the runs and their children wrote hundreds
                raise RuntimeError("no writes counted: the API server's apiserver_request_total was not read")
            time.sleep(args.idle_seconds)  # the measurement window itself
            idle_writes = operator_writes(cluster) - before
            idle_minutes = (time.perf_counter() - idle_started) / 60
            buckets = reconcile_buckets(operator.metrics())
            assert operator.process is not None
            result = {
                "date": date.today().isoformat(), "machine": f"{platform.node()}, 2 shared cores",
                "runs": args.runs, "applied_seconds": round(applied, 2),
                "all_running_seconds": round(all_running, 2) if running == args.runs else None,
                "running_at_end": running, "reconciles": buckets[-1][1],
                "idle_writes_per_run_per_minute": round(idle_writes / args.runs / idle_minutes, 3),
                "reconcile_p50_seconds": round(quantile(buckets, 0.5), 4),
                "reconcile_p99_seconds": round(quantile(buckets, 0.99), 4),
                "operator_peak_rss_mb": round(peak_rss_mb(operator.process.pid), 1),
                "cpu_seconds": {"operator": cpu_seconds(operator.process.pid),
                                **{c.name: cpu_seconds(c.proc.pid) for c in cluster.components}},
                "requests_until_all_running": ramp_requests,
                "running_over_time": samples,
            }
        finally:
            operator.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("running_over_time", "requests_until_all_running")},
                     indent=2))
    print("requests until all Running:", json.dumps(dict(list(result["requests_until_all_running"].items())[:12])))


if __name__ == "__main__":
    main()
