"""agentrun's own Prometheus series: names, labels and values as a scrape parses them."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agentrun.metrics import RunMetrics

STEP = {"step": 3, "reward_mean": -0.5, "reward_std": 0.25, "loss": 0.1, "kl": 0.0, "grad_norm": 0.7,
        "tokens_per_second": 1234.0, "mfu": 0.31, "zero_variance_groups": 0.125, "rollout_seconds": 20.0, "train_seconds": 12.0,
        "save_seconds": 0.2, "trajectory_seconds_p50": 4.0, "trajectory_seconds_p90": 9.5,
        "trajectory_seconds_max": 14.0, "staleness": 1, "learner_wait_seconds": 0.5, "server_idle_seconds": 2.5}
RUN = {"namespace": "team-a", "run": "quickstart"}


def scrape(metrics: RunMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_a_step_and_an_evaluation_are_exported_with_run_labels() -> None:
    metrics = RunMetrics(**RUN)
    metrics.record_step(STEP, {"TimeoutError": 2, "APIStatusError": 1})
    metrics.record_eval("test", 3, {"answer_accuracy": 0.05, "sources_accuracy": 0.09, "mean_reward": -0.8,
                                    "mean_turns": 5.6, "latency_p50_seconds": 11.0})
    samples = scrape(metrics)

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset({**RUN, **labels}.items()))]

    assert value("agentrun_learner_step") == 3
    assert value("agentrun_learner_reward_mean") == -0.5
    assert value("agentrun_learner_zero_variance_group_fraction") == 0.125
    assert value("agentrun_learner_mfu") == 0.31
    assert value("agentrun_learner_step_phase_seconds", phase="train") == 12.0
    assert value("agentrun_learner_step_phase_seconds", phase="rollout_wait") == 0.5
    assert value("agentrun_learner_step_phase_seconds", phase="sampler_idle") == 2.5
    assert value("agentrun_learner_staleness") == 1
    assert value("agentrun_learner_rollout_errors_total", kind="TimeoutError") == 2
    assert value("agentrun_learner_rollout_errors_total", kind="APIStatusError") == 1
    assert value("agentrun_learner_trajectory_seconds", quantile="0.9") == 9.5
    assert value("agentrun_learner_trajectory_seconds", quantile="1") == 14.0
    assert value("agentrun_eval_answer_accuracy", split="test", step="3") == 0.05
    assert value("agentrun_eval_reward_mean", split="test", step="3") == -0.8


def test_the_rollout_clients_error_kinds_are_exported_at_zero_before_any_error() -> None:
    from agentrun.metrics import EXPECTED_ERROR_KINDS
    from agentrun.rollout import chat

    assert all(issubclass(getattr(chat, kind), chat.ChatRequestError) for kind in EXPECTED_ERROR_KINDS)
    samples = scrape(RunMetrics(**RUN))
    for kind in EXPECTED_ERROR_KINDS:
        assert samples[("agentrun_learner_rollout_errors_total", frozenset({**RUN, "kind": kind}.items()))] == 0
