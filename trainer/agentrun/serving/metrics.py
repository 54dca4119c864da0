"""vLLM's Prometheus series, under vLLM's names, types, buckets and labels (`model_name`, `engine`).

Dashboards and alerts written against a vLLM deployment then work against this server. Each server has
its own registry (not the process-global one), so several servers can live in one process (tests).
Names as they appear when scraped: counters gain `_total`, histograms `_bucket`/`_sum`/`_count`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
LABELS = ("model_name", "engine")
ENGINE = "0"  # one engine per server, as a single-process vLLM labels it
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


class ServerMetrics:
    """The series for one served base model (vLLM labels adapter requests with the base name too)."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        labels = (model_name, ENGINE)
        self.running = Gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.",
            LABELS, registry=self.registry,
        ).labels(*labels)  # fmt: skip
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", LABELS, registry=self.registry
        ).labels(*labels)
        self.kv_cache_usage = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", LABELS, registry=self.registry
        ).labels(*labels)
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", LABELS, registry=self.registry
        ).labels(*labels)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", LABELS, registry=self.registry
        ).labels(*labels)
        self.time_to_first_token = Histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            LABELS, registry=self.registry, buckets=TTFT_BUCKETS,
        ).labels(*labels)  # fmt: skip
        self.e2e_latency = Histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
            LABELS, registry=self.registry, buckets=LATENCY_BUCKETS,
        ).labels(*labels)  # fmt: skip

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)
