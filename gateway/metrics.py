"""Prometheus metrics. One ``Metrics`` per application, on its own registry, so tests and
several apps in one process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "lakegate_http_requests_total",
            "HTTP requests served, by route template, method and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "lakegate_http_request_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.submissions = Counter(
            "lakegate_submissions_total",
            "Run submissions by outcome (accepted, submitted, replayed, rejected, refused).",
            ["outcome"],
            registry=r,
        )
        self.databricks_calls = Counter(
            "lakegate_databricks_calls_total",
            "Calls to Databricks by endpoint and outcome (HTTP status or transport_error).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.databricks_latency = Histogram(
            "lakegate_databricks_call_seconds",
            "Latency of one Databricks call attempt.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.runs = Gauge(
            "lakegate_runs",
            "Runs not yet terminal, by namespace and state.",
            ["namespace", "state"],
            registry=r,
        )
        self.poll_lag = Histogram(
            "lakegate_poll_lag_seconds",
            "How late a run was polled compared with when it was due.",
            buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        self.transitions = Counter(
            "lakegate_run_transitions_total",
            "Run state changes, by the state entered.",
            ["state"],
            registry=r,
        )

    def observe_databricks_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.databricks_calls.labels(endpoint=endpoint, outcome=outcome).inc()
        self.databricks_latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
