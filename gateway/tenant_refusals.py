"""The configured tenants refused by their own policy, as /readyz and /metrics show them.

A tenant whose policy names an unset variable or an unreadable token file is refused alone
(its requests answer 422 naming the cause); the gateway starts and serves every other tenant.
This is the composition root's view of that: one readiness check, never failing, whose detail
names each refused tenant, and which keeps ``lakegate_tenants_refused`` up to date.

What heals without a restart, and when this view follows. The resolver holds no refusal: each
resolution checks the policy again, so a request sees a fix at once. A token file that
appears (or becomes readable) heals by itself; a tenants file that no longer names the unset
variable heals on its reload (SIGHUP, or the file changing). This view re-evaluates on every
/readyz probe, after every reload that changed an identity, and every ``interval_seconds``
while some tenant is refused, so the metric and the log follow even where nothing probes.
An environment variable cannot heal: a running process never sees its environment change,
so only a restart (or a policy naming the credential another way) clears that refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Protocol

from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.settings.tenants import TenantRefusal
from gateway.tasks import stop

log = get_logger(__name__)

RECHECK_SECONDS = 30.0


class RefusalSource(Protocol):
    """What the watch asks (the identity resolver): the configured tenants refused now."""

    async def refusals(self) -> list[TenantRefusal]: ...


class RefusalWatch:
    """The refused tenants now, in the readiness detail, the metric and the log."""

    def __init__(
        self,
        resolver: RefusalSource,
        metrics: Metrics,
        *,
        interval_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._resolver = resolver
        self._metrics = metrics
        self._interval = interval_seconds
        self._refused: dict[str, TenantRefusal] = {}
        self._wake = asyncio.Event()
        self._first = True

    @property
    def refused(self) -> list[TenantRefusal]:
        return list(self._refused.values())

    async def refresh(self) -> list[TenantRefusal]:
        """Evaluate every configured tenant again; set the metric; log what changed."""
        found = await self._resolver.refusals()
        now = {r.detail: r for r in found}
        new = [now[d] for d in sorted(now.keys() - self._refused.keys())]
        if self._first:
            # The resolver logged the unset variables when it was built; it checks no file
            # there (it runs on the loop), so the first look logs only the files.
            new = [r for r in new if r.reason != "environment"]
            self._first = False
        for refusal in new:
            log.warning("tenant_refused", namespace=refusal.namespace, reason=refusal.reason)
        healed = {r.namespace for r in self._refused.values()} - {r.namespace for r in found}
        for namespace in sorted(healed):
            log.info("tenant_refusal_cleared", namespace=namespace)
        self._refused = now
        self._metrics.set_tenants_refused([(r.namespace, r.reason) for r in found])
        return found

    async def check(self) -> tuple[bool, str]:
        """Readiness: a refused tenant is that tenant's problem, not the gateway's; shown,
        never failing."""
        found = await self.refresh()
        if not found:
            return True, "every configured tenant policy is usable"
        return True, "; ".join(r.message() for r in found)

    def wake(self, _namespaces: Collection[str] | None = None) -> None:
        """A reload listener (``TenantsReloader.on_changed``): evaluate again now."""
        self._wake.set()

    async def watch_forever(self) -> None:
        """Re-evaluate when woken, and every interval while some tenant is refused."""
        while True:
            timeout = self._interval if self._refused else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            await self.refresh()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """``watch_forever`` as a task for the duration of the block."""
        task = asyncio.create_task(self.watch_forever(), name="tenant-refusals")
        try:
            yield
        finally:
            await stop(task)
