"""agentrun's own Prometheus series (DESIGN §6): one registry of names, used by the local runner, the
learner and evaluator pods, and the operator. Every run's series carries `namespace` and `run`.

The embedded model server exports vLLM's `vllm:*` names instead (agentrun.serving.metrics), since
dashboards written for vLLM must read it unchanged.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# prometheus_client adds a `<name>_created` timestamp beside every counter and histogram; no panel or alert
# reads them, and docs/metrics.md lists what is exported.
disable_created_metrics()

LABELS = ("namespace", "run")
# The rollout client's request errors (agentrun.rollout.chat), the kinds a healthy run may still see.
EXPECTED_ERROR_KINDS = ("RequestTimeout", "TransportError", "StatusError")
EVAL_LABELS = (*LABELS, "split", "step")
# An evaluation's series: (name, help, key of `EvalSummary.as_dict()`). The learner and evaluator of a local
# run set them as gauges; the operator exports each run's last evaluation from its status at scrape time.
EVAL_SERIES = (
    ("agentrun_eval_answer_accuracy", "Answer accuracy of an evaluation.", "answer_accuracy"),
    ("agentrun_eval_sources_accuracy", "Sources accuracy of an evaluation.", "sources_accuracy"),
    ("agentrun_eval_reward_mean", "Mean reward of an evaluation.", "mean_reward"),
    ("agentrun_eval_turns_mean", "Mean turns per question of an evaluation.", "mean_turns"),
    ("agentrun_eval_latency_p50_seconds", "Median seconds per question of an evaluation.", "latency_p50_seconds"),
)


class RunMetrics:
    """The learner's and evaluator's series for one run."""

    def __init__(self, namespace: str, run: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.labels = {"namespace": namespace, "run": run}

        def gauge(name: str, doc: str, *extra: str) -> Gauge:
            return Gauge(f"agentrun_{name}", doc, [*LABELS, *extra], registry=self.registry)

        self.step = gauge("learner_step", "Last completed optimizer step.")
        self.reward_mean = gauge("learner_reward_mean", "Mean reward of the step's rollouts.")
        self.reward_std = gauge("learner_reward_std", "Standard deviation of the step's rollout rewards.")
        self.loss = gauge("learner_loss", "GRPO loss of the step.")
        self.kl = gauge("learner_kl", "Mean per-token KL to the base model (0 when the penalty is off).")
        self.grad_norm = gauge("learner_grad_norm", "Gradient norm before clipping.")
        self.tokens_per_second = gauge("learner_trained_tokens_per_second", "Trained tokens per second of update.")
        self.mfu = gauge("learner_mfu", "Model FLOPs utilisation of the update (4N + attention FLOPs; GPUs only).")
        self.zero_variance = gauge("learner_zero_variance_group_fraction", "Groups dropped for equal rewards.")
        self.staleness = gauge("learner_staleness", "Adapter versions between the one that sampled the step and "
                                                    "the one it updated (at most rollout.maxStaleness).")
        self.phase_seconds = gauge("learner_step_phase_seconds", "Seconds of the step's phases.", "phase")
        self.trajectory_seconds = gauge("learner_trajectory_seconds",
                                        "Wall seconds of the step's trajectories (quantile 0.5, 0.9, 1).", "quantile")
        self.rollout_errors = Counter("agentrun_learner_rollout_errors",
                                      "Failed rollout trajectories, by exception type.",
                                      [*LABELS, "kind"], registry=self.registry)
        for kind in EXPECTED_ERROR_KINDS:  # present at 0 from the start, so rates and panels have a series
            self.rollout_errors.labels(**self.labels, kind=kind)
        self.evaluation = {key: Gauge(name, doc, EVAL_LABELS, registry=self.registry) for name, doc, key in EVAL_SERIES}

    def record_step(self, values: Mapping[str, float], errors: Mapping[str, int]) -> None:
        """Set the learner gauges from a step's record (`StepRecord.as_metrics()`)."""
        labels = self.labels
        self.step.labels(**labels).set(values["step"])
        self.reward_mean.labels(**labels).set(values["reward_mean"])
        self.reward_std.labels(**labels).set(values["reward_std"])
        self.loss.labels(**labels).set(values["loss"])
        self.kl.labels(**labels).set(values["kl"])
        self.grad_norm.labels(**labels).set(values["grad_norm"])
        self.tokens_per_second.labels(**labels).set(values["tokens_per_second"])
        self.mfu.labels(**labels).set(values["mfu"])
        self.zero_variance.labels(**labels).set(values["zero_variance_groups"])
        self.staleness.labels(**labels).set(values["staleness"])
        for phase, key in (("rollout", "rollout_seconds"), ("train", "train_seconds"), ("save", "save_seconds"),
                           ("rollout_wait", "learner_wait_seconds"), ("sampler_idle", "server_idle_seconds")):
            self.phase_seconds.labels(**labels, phase=phase).set(values[key])
        for quantile, key in (("0.5", "p50"), ("0.9", "p90"), ("1", "max")):
            self.trajectory_seconds.labels(**labels, quantile=quantile).set(values[f"trajectory_seconds_{key}"])
        for kind, count in errors.items():
            self.rollout_errors.labels(**labels, kind=kind).inc(count)

    def record_eval(self, split: str, step: int, values: Mapping[str, float]) -> None:
        """Set the evaluator gauges from an evaluation summary (`EvalSummary.as_dict()`)."""
        labels = {**self.labels, "split": split, "step": str(step)}
        for key, gauge in self.evaluation.items():
            gauge.labels(**labels).set(values[key])


class RunsByPhase(Collector):
    """`agentrun_operator_runs{namespace, phase}`, computed at scrape time from the operator's view of
    the runs (so a run deleted while the operator was down never lingers as a stale gauge)."""

    def __init__(self, phases: Callable[[], Mapping[tuple[str, str], str]]) -> None:
        self.phases = phases  # (namespace, run) -> phase

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("agentrun_operator_runs", "AgentTrainingRuns by phase.",
                                   labels=["namespace", "phase"])
        counts = collections.Counter((namespace, phase) for (namespace, _), phase in self.phases().items())
        for (namespace, phase), count in sorted(counts.items()):
            family.add_metric([namespace, phase], count)
        yield family


class LastEvaluations(Collector):
    """`agentrun_eval_*{namespace, run, split, step}` of each run's last evaluation, read at scrape time from
    the operator's view of the runs' status (evaluation Jobs end too soon to be scraped themselves)."""

    def __init__(self, evaluations: Callable[[], Mapping[tuple[str, str], Mapping[str, float | int | str]]]) -> None:
        self.evaluations = evaluations  # (namespace, run) -> {"split", "step", and EvalSummary keys}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = sorted(self.evaluations().items())
        for name, doc, key in EVAL_SERIES:
            family = GaugeMetricFamily(name, doc, labels=list(EVAL_LABELS))
            for (namespace, run), values in runs:
                if values.get(key) is not None:
                    family.add_metric([namespace, run, str(values["split"]), str(values["step"])], float(values[key]))
            yield family


class OperatorMetrics:
    """The operator's series: runs by phase and last evaluations (scrape time), reconciles by result,
    children created."""

    def __init__(self, phases: Callable[[], Mapping[tuple[str, str], str]],
                 evaluations: Callable[[], Mapping[tuple[str, str], Mapping[str, float | int | str]]] = dict,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.registry.register(RunsByPhase(phases))
        self.registry.register(LastEvaluations(evaluations))
        self.reconciles = Counter("agentrun_operator_reconciles", "Reconciliations of runs, by result.",
                                  [*LABELS, "result"], registry=self.registry)
        self.reconcile_seconds = Histogram("agentrun_operator_reconcile_duration_seconds",
                                           "Duration of one reconciliation.", ["result"], registry=self.registry,
                                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.children_created = Counter("agentrun_operator_children_created", "Child objects created, by kind.",
                                        [*LABELS, "kind"], registry=self.registry)

    def forget(self, namespace: str, run: str) -> None:
        """Drop a deleted run's labelled series (the scrape-time ones follow the operator's maps)."""
        for counter in (self.reconciles, self.children_created):
            counter.remove_by_labels({"namespace": namespace, "run": run})
