"""Prometheus metrics. One ``Metrics`` per application, on its own registry, so tests and
several apps in one process never share counters."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway import __version__, heap

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_POLL_LAG_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_QUEUE_WAIT_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
# Runs last from seconds to a day; a run's duration is from its submission to its end.
_RUN_DURATION_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Children of the counters and histograms the request path reports to, by family and
        # label values: labels() takes a lock, validates and builds a tuple each call, which
        # costs more than the increment it leads to. Never for gauges, which are cleared.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._http()
        self._runs()
        self._databricks()
        self._tokens()
        self._quotas()
        self._webhooks()
        self._by_namespace()
        self._git_credentials()
        self.build_info = Info(
            "lakegate_build", "The running gateway's version.", registry=self.registry
        )
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        # The collector is the process's: one recorder, read by every application's registry.
        heap.record_pauses()
        self.registry.register(heap.PAUSES)

    # --- the families, by what they watch -------------------------------------------------

    def _http(self) -> None:
        self.http_requests = self._counter(
            "lakegate_http_requests_total",
            "HTTP requests served, by route template, method and status.",
            ["method", "route", "status"],
        )
        self.http_latency = self._histogram(
            "lakegate_http_request_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
        )

    def _runs(self) -> None:
        self.submissions = self._counter(
            "lakegate_submissions_total",
            "Run submissions by outcome (accepted, submitted, replayed, rejected, refused).",
            ["outcome"],
        )
        self.runs = Gauge(
            "lakegate_runs",
            "Runs not yet terminal, by namespace and state.",
            ["namespace", "state"],
            registry=self.registry,
        )
        self.poll_lag = self._histogram(
            "lakegate_poll_lag_seconds",
            "How late a run was polled compared with when it was due.",
            [],
            buckets=_POLL_LAG_BUCKETS,
        )
        self.transitions = self._counter(
            "lakegate_run_transitions_total",
            "Run state changes, by the state entered.",
            ["state"],
        )
        self.runs_identity_gone = Gauge(
            "lakegate_runs_identity_gone",
            "Active runs left unfollowed because the ServiceAccount or Secret they were "
            "submitted under is gone, or the namespace now resolves to another principal "
            "(restore it and following resumes).",
            registry=self.registry,
        )

    def _databricks(self) -> None:
        self.databricks_calls = self._counter(
            "lakegate_databricks_calls_total",
            "Calls to Databricks by endpoint and outcome (HTTP status or transport_error).",
            ["endpoint", "outcome"],
        )
        self.databricks_latency = self._histogram(
            "lakegate_databricks_call_seconds",
            "Latency of one Databricks call attempt.",
            ["endpoint"],
        )

    def _tokens(self) -> None:
        # Children by (event, kind): every token() call reports here, and labels() costs more
        # than the lookup it reports (a lock, label validation, a tuple); a dict hit does not.
        self._token_events: dict[tuple[str, str], Counter] = {}
        self.token_cache = self._counter(
            "lakegate_token_cache_events_total",
            "Token cache events (hit, miss, refresh, refresh_error, invalidated, evicted) by "
            "identity type.",
            ["event", "kind"],
        )
        self.token_endpoint_latency = self._histogram(
            "lakegate_token_endpoint_seconds",
            "Time to obtain a token from a token endpoint or TokenRequest, by identity type.",
            ["kind"],
        )
        self.token_endpoint_errors = self._counter(
            "lakegate_token_endpoint_errors_total",
            "Failed token fetches by identity type and error class.",
            ["kind", "error"],
        )

    def _quotas(self) -> None:
        self.quota_refusals = self._counter(
            "lakegate_quota_refusals_total",
            "Submissions refused by admission, by namespace and the limit that refused.",
            ["namespace", "limit"],
        )
        self.queue_wait = self._histogram(
            "lakegate_queue_wait_seconds",
            "Time a run waited QUEUED, from submission to admission, by namespace.",
            ["namespace"],
            buckets=_QUEUE_WAIT_BUCKETS,
        )
        self.tenants_refused = Gauge(
            "lakegate_tenants_refused",
            "1 for each configured tenant refused by its policy, by namespace and reason "
            "(environment: a variable it names is unset; file: a token file is unreadable).",
            ["namespace", "reason"],
            registry=self.registry,
        )
        self.ledger_up = Gauge(
            "lakegate_ledger_up",
            "1 while the run ledger answered its last read (every 15 s), 0 when it failed.",
            registry=self.registry,
        )
        self.quota_usage = Gauge(
            "lakegate_quota_usage",
            "A namespace's usage against each of its limits (max_active_runs: active runs, "
            "max_queued_runs: queued runs, run_hours_per_day: run-hours of the rolling day).",
            ["namespace", "limit"],
            registry=self.registry,
        )
        self.quota_limit = Gauge(
            "lakegate_quota_limit",
            "The value of each of a namespace's limits, beside lakegate_quota_usage.",
            ["namespace", "limit"],
            registry=self.registry,
        )
        self.tenant_policy_stale = Gauge(
            "lakegate_tenant_policy_stale",
            "1 while the tenants file on disk was refused and an older policy is running.",
            registry=self.registry,
        )

    def _webhooks(self) -> None:
        self.webhook_deliveries = self._counter(
            "lakegate_webhook_deliveries_total",
            "Webhook delivery attempts by namespace, outcome (delivered, retry, dead, gone, "
            "no_endpoint, disabled) and HTTP status (none: no answer).",
            ["namespace", "outcome", "status"],
        )
        self.webhook_latency = self._histogram(
            "lakegate_webhook_delivery_seconds",
            "Time of one webhook delivery attempt, by namespace.",
            ["namespace"],
        )
        self.webhook_lag = self._histogram(
            "lakegate_webhook_lag_seconds",
            "From the state change to its webhook delivered, by namespace.",
            ["namespace"],
            buckets=(*_POLL_LAG_BUCKETS, 1800.0, 7200.0, 36000.0),
        )
        self.webhook_queue = Gauge(
            "lakegate_webhook_queue",
            "Webhook events by namespace and status (pending: not yet delivered, dead).",
            ["namespace", "status"],
            registry=self.registry,
        )
        self.webhook_disabled = Gauge(
            "lakegate_webhook_disabled_endpoints",
            "Webhook endpoints disabled by a 410 Gone, by namespace.",
            ["namespace"],
            registry=self.registry,
        )

    def _by_namespace(self) -> None:
        # What one team asks of its dashboard: its submissions, its refusals, how its runs end.
        self.namespace_submissions = self._counter(
            "lakegate_namespace_submissions_total",
            "Run submissions by namespace and outcome (accepted, submitted, replayed, "
            "rejected, deferred).",
            ["namespace", "outcome"],
        )
        self.refusals = self._counter(
            "lakegate_refusals_total",
            "Requests refused with a 4xx naming a namespace, by namespace and reason (the "
            "problem type: quota-exceeded, identity-misconfigured, run-rejected, ...).",
            ["namespace", "reason"],
        )
        self.terminal = self._counter(
            "lakegate_runs_terminal_total",
            "Runs that reached a terminal state, by namespace and state.",
            ["namespace", "state"],
        )
        self.run_duration = self._histogram(
            "lakegate_run_duration_seconds",
            "From a run's submission to the gateway until its terminal state, by that state.",
            ["state"],
            buckets=_RUN_DURATION_BUCKETS,
        )

    def _counter(self, name: str, documentation: str, labels: Sequence[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        *,
        buckets: Sequence[float] = _LATENCY_BUCKETS,
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    # --- what the components report ---------------------------------------------------------

    def _child(self, family: Counter | Histogram, *values: str) -> Any:
        key = (id(family), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*values)
        return child

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, method, route, str(status)).inc()
        self._child(self.http_latency, method, route).observe(seconds)

    def observe_token_event(self, event: str, kind: str) -> None:
        child = self._token_events.get((event, kind))
        if child is None:
            child = self.token_cache.labels(event=event, kind=kind)
            self._token_events[(event, kind)] = child
        child.inc()

    def observe_token_fetch(self, kind: str, seconds: float, error: str | None) -> None:
        self.token_endpoint_latency.labels(kind=kind).observe(seconds)
        if error is not None:
            self.token_endpoint_errors.labels(kind=kind, error=error).inc()

    def observe_databricks_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._child(self.databricks_calls, endpoint, outcome).inc()
        self._child(self.databricks_latency, endpoint).observe(seconds)

    def observe_webhook(
        self, namespace: str, outcome: str, status: int | None, seconds: float | None
    ) -> None:
        self.webhook_deliveries.labels(
            namespace=namespace, outcome=outcome, status=str(status) if status else "none"
        ).inc()
        if seconds is not None:
            self.webhook_latency.labels(namespace=namespace).observe(seconds)

    def observe_submission(self, namespace: str, outcome: str) -> None:
        self._child(self.submissions, outcome).inc()
        self._child(self.namespace_submissions, namespace, outcome).inc()

    def observe_quota_refusal(self, namespace: str, limit: str | None) -> None:
        self.quota_refusals.labels(namespace=namespace, limit=limit).inc()

    def observe_refusal(self, namespace: str, reason: str) -> None:
        self.refusals.labels(namespace=namespace, reason=reason).inc()

    def observe_transition(
        self, namespace: str, state: str, terminal: bool, since_created: float
    ) -> None:
        """A run entered ``state``, ``since_created`` seconds after it was submitted."""
        self._child(self.transitions, state).inc()
        if terminal:
            self._child(self.terminal, namespace, state).inc()
            self._child(self.run_duration, state).observe(max(0.0, since_created))

    def set_tenants_refused(self, refused: Sequence[tuple[str, str]]) -> None:
        """Replace the refused tenants with ``(namespace, reason)`` pairs."""
        self.tenants_refused.clear()
        for namespace, reason in refused:
            self.tenants_refused.labels(namespace=namespace, reason=reason).set(1)

    def set_quota_usage(self, rows: Sequence[tuple[str, str, float, float]]) -> None:
        """Replace the quota gauges with (namespace, limit, usage, value) rows."""
        self.quota_usage.clear()
        self.quota_limit.clear()
        for namespace, limit, usage, value in rows:
            self.quota_usage.labels(namespace=namespace, limit=limit).set(usage)
            self.quota_limit.labels(namespace=namespace, limit=limit).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch_ledger(self, commits: Callable[[], tuple[int, int]]) -> Collector:
        """Report the ledger's commits and the writes they carried, read at each scrape;
        the collector returned is the one to ``registry.unregister`` when the ledger closes."""
        collector = _LedgerCommits(commits)
        self.registry.register(collector)
        return collector

    # --- Azure DevOps Git credentials (gateway.gitcreds) -----------------------------------

    def _git_credentials(self) -> None:
        self.git_credential_refreshes = self._counter(
            "lakegate_git_credential_refreshes_total",
            "Azure DevOps Git credentials written with a new Entra token, by namespace, "
            "trigger (submit, background) and outcome (created, updated, failed).",
            ["namespace", "trigger", "outcome"],
        )
        self.git_credential_refresh_failures = self._counter(
            "lakegate_git_credential_refresh_failures_total",
            "Failed attempts to put a new Entra token in a Git credential, by namespace and "
            "trigger (submit, background).",
            ["namespace", "trigger"],
        )
        self.git_credential_valid_until = Gauge(
            "lakegate_git_credential_valid_until_seconds",
            "When the Entra token lakegate last put in the namespace's Git credential "
            "expires (epoch seconds).",
            ["namespace"],
            registry=self.registry,
        )
        self.git_credential_last_refresh = Gauge(
            "lakegate_git_credential_last_refresh_timestamp_seconds",
            "When lakegate last wrote the namespace's Git credential (epoch seconds).",
            ["namespace"],
            registry=self.registry,
        )

    def observe_git_credential(
        self, namespace: str, trigger: str, outcome: str, *, valid_until: float | None = None
    ) -> None:
        self.git_credential_refreshes.labels(
            namespace=namespace, trigger=trigger, outcome=outcome
        ).inc()
        if outcome == "failed":
            self.git_credential_refresh_failures.labels(namespace=namespace, trigger=trigger).inc()
            return
        self.git_credential_last_refresh.labels(namespace=namespace).set_to_current_time()
        if valid_until is not None:
            self.git_credential_valid_until.labels(namespace=namespace).set(valid_until)


class _LedgerCommits(Collector):
    """The ledger's own counts, read when scraped: the store keeps them, not the request path."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        commits, writes = self._read()
        yield CounterMetricFamily(
            "lakegate_ledger_commits",
            "Write transactions the run ledger committed (one fsync each on SQLite).",
            value=commits,
        )
        yield CounterMetricFamily(
            "lakegate_ledger_writes",
            "Writes the run ledger committed; over commits, the writes per group commit.",
            value=writes,
        )
