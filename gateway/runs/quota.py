"""What a namespace's quota looks like now: its limits, usage, queue and pause state.

The read behind ``GET /v1/namespaces/{namespace}/quota`` and ``lakegate quota``. Queue
position estimates multiply a position by ``admission.slot_wait`` (the namespace's mean run
time over its active limit), so they are estimates, None before any run of the namespace
ended in the last day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gateway.errors import QuotaExceeded
from gateway.model import ACTIVE_STATES, NamespaceUsage, RunState
from gateway.runs.admission import (
    UNMEASURED_WAIT_SECONDS,
    over_budget,
    rate_wait,
    run_hours,
    run_hours_refusal,
    run_hours_wait,
    slot_wait,
)
from gateway.runs.budget import used_seconds
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.queue import HEADS_PER_NAMESPACE
from gateway.runs.types import Clock, utcnow
from gateway.settings import QuotaSettings, TenantsSettings
from gateway.store.base import Store


def _estimate(position: int, usage: NamespaceUsage, quotas: QuotaSettings) -> float | None:
    if usage.mean_run_seconds is None:
        return None
    return round(position * slot_wait(usage, quotas), 1)


async def budget_refusal(
    store: Store, namespace: str, quotas: QuotaSettings, now: datetime
) -> QuotaExceeded:
    """The over-budget 429 with its exact Retry-After, from the namespace's spans of the day.

    Read after the refusal, outside the insert's transaction: only a refused submission pays
    for the spans, and a refusal writes nothing that a later read could contradict.
    """
    spans = await store.run_spans(namespace, now)
    wait = run_hours_wait(spans, quotas, now, otherwise=UNMEASURED_WAIT_SECONDS)
    return run_hours_refusal(namespace, quotas, used_seconds(spans, now), wait)


def _run_hours(usage: NamespaceUsage, quotas: QuotaSettings, wait: float | None) -> dict[str, Any]:
    return {
        "used": run_hours(usage.run_seconds),
        "budget": quotas.run_hours_per_day,
        "retry_after_seconds": None if wait is None else round(wait, 1),
    }


class QuotaReport:
    """Reads a namespace's quota picture from the ledger and the running policy."""

    def __init__(
        self,
        *,
        store: Store,
        tenants: Callable[[], TenantsSettings],
        caps: WorkspaceCaps,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._tenants = tenants
        self._caps = caps
        self._clock = clock

    async def _budget_wait(self, usage: NamespaceUsage, quotas: QuotaSettings) -> float | None:
        """Seconds until the run-hours budget frees (0 under it); None without a budget."""
        if quotas.run_hours_per_day is None:
            return None
        if not over_budget(usage.run_seconds, quotas):
            return 0.0
        now = self._clock()
        spans = await self._store.run_spans(usage.namespace, now)
        return run_hours_wait(spans, quotas, now, otherwise=UNMEASURED_WAIT_SECONDS)

    async def gauges(
        self, counts: Mapping[tuple[str, RunState], int]
    ) -> list[tuple[str, str, float, float]]:
        """(namespace, limit, usage, value) of every namespace configured or with runs not
        ended (``counts``, as the run gauges read them), for ``Metrics.set_quota_usage``."""
        tenants = self._tenants()
        active: dict[str, int] = {}
        queued: dict[str, int] = {}
        for (namespace, state), count in counts.items():
            if state is RunState.QUEUED:
                queued[namespace] = queued.get(namespace, 0) + count
            elif state in ACTIVE_STATES:
                active[namespace] = active.get(namespace, 0) + count
        names = sorted(set(tenants.namespaces) | set(active) | set(queued))
        budgeted = [ns for ns in names if tenants.quotas(ns).run_hours_per_day is not None]
        used = await self._store.run_seconds(budgeted, self._clock()) if budgeted else {}
        rows: list[tuple[str, str, float, float]] = []
        for ns in names:
            quotas = tenants.quotas(ns)
            rows.append((ns, "max_active_runs", active.get(ns, 0), quotas.max_active_runs))
            rows.append((ns, "max_queued_runs", queued.get(ns, 0), quotas.max_queued_runs))
            if quotas.run_hours_per_day is not None:
                hours = used.get(ns, 0.0) / 3600
                rows.append((ns, "run_hours_per_day", hours, quotas.run_hours_per_day))
        return rows

    async def report(self, namespace: str) -> dict[str, Any]:
        tenants, now = self._tenants(), self._clock()
        quotas = tenants.quotas(namespace)
        workspace = tenants.workspace_name(namespace) or ""
        usage = await self._store.usage(namespace, workspace, now)
        heads = [r for r in await self._store.queued_heads(HEADS_PER_NAMESPACE)]
        queue = [r for r in heads if r.namespace == namespace]
        wait = rate_wait(
            usage.recent_submissions,
            now,
            per_minute=quotas.submissions_per_minute,
            burst=quotas.burst,
        )
        return {
            "namespace": namespace,
            "workspace": workspace or None,
            "limits": quotas.model_dump(mode="json"),
            "guardrails": tenants.guardrails(namespace).model_dump(mode="json"),
            "usage": {
                "active": usage.active,
                "queued": usage.queued,
                "submissions_last_minute": sum(
                    1 for t in usage.recent_submissions if (now - t).total_seconds() < 60
                ),
                "rate_retry_after_seconds": round(wait, 3),
                "workspace_active": usage.workspace_active,
                "workspace_max_active_runs": self._caps.cap(workspace),
                "mean_run_seconds": usage.mean_run_seconds,
                "run_hours": _run_hours(usage, quotas, await self._budget_wait(usage, quotas)),
            },
            "queue": [
                {
                    "id": run.id,
                    "position": position,
                    "queued_seconds": round((now - run.created_at).total_seconds(), 1),
                    "estimated_wait_seconds": _estimate(position, usage, quotas),
                }
                for position, run in enumerate(queue, start=1)
            ],
            "paused": quotas.paused,
            "draining": quotas.draining,
            "unmeasured_wait_seconds": UNMEASURED_WAIT_SECONDS,
        }
