"""What a namespace's quota looks like now: its limits, usage, queue and pause state.

The read behind ``GET /v1/namespaces/{namespace}/quota`` and ``lakegate quota``. Queue
position estimates multiply a position by ``admission.slot_wait`` (the namespace's mean run
time over its active limit), so they are estimates, None before any run of the namespace
ended in the last day.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.model import NamespaceUsage
from gateway.runs.admission import UNMEASURED_WAIT_SECONDS, rate_wait, slot_wait
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.queue import HEADS_PER_NAMESPACE
from gateway.runs.types import Clock, utcnow
from gateway.settings import QuotaSettings, TenantsSettings
from gateway.store.base import Store


def _estimate(position: int, usage: NamespaceUsage, quotas: QuotaSettings) -> float | None:
    if usage.mean_run_seconds is None:
        return None
    return round(position * slot_wait(usage, quotas), 1)


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
