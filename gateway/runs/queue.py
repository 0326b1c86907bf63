"""The admission queue's task: admits QUEUED runs as capacity frees.

The queue is the ledger (QUEUED runs, oldest first), so it survives restarts. Each pass reads
the queued and active runs per workspace and namespace (one snapshot of counts), then the
oldest queued runs of only the namespaces those counts say could admit, asks
``admission.promotions`` which go (fair across namespaces by share, under each namespace's
``max_active_runs`` and run-hours budget and each workspace's effective cap, ``runs.caps``),
and moves each from QUEUED to SUBMITTING through the ledger, due at once: the poller then
submits it like any run whose inline submission did not finish. A queued run never touches
Databricks before that.

Every replica runs this task. A pass claims the heads it read (``Store.claim_queued_heads``:
a namespace whose heads another replica holds is left to that replica), and each promotion
re-checks the namespace's limits and its workspace's cap in the promotion's own transaction
(``admission.still_fits``), so two replicas' passes cannot together overshoot a limit their
counts each said had room. A new run of a namespace with runs waiting always queues behind
them (``admission.decide``), so no submission jumps the queue either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.errors import LakegateError
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import RunRecord
from gateway.runs.admission import (
    Waiting,
    admissible,
    over_budget,
    promotion_needs,
    promotions,
    still_fits,
)
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.leases import Claims
from gateway.runs.ledger import RunLedger
from gateway.runs.types import Clock, utcnow
from gateway.settings import TenantsSettings
from gateway.store.base import Store

log = get_logger(__name__)

# How many of each namespace's oldest queued runs one pass considers.
HEADS_PER_NAMESPACE = 16


class Admitter:
    """Admits queued runs in passes; ``run_forever`` is the background task."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: RunLedger,
        tenants: Callable[[], TenantsSettings],
        caps: WorkspaceCaps,
        metrics: Metrics,
        claims: Claims | None = None,
        clock: Clock = utcnow,
        idle_seconds: float = 0.2,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._claims = claims or Claims(store, ledger.owner, clock=clock)
        self._tenants = tenants
        self._caps = caps
        self._metrics = metrics
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        ledger.on_finished.append(lambda _run: self._wake.set())

    async def tick(self) -> int:
        """One pass: admit what fits now; return how many runs were admitted."""
        queued, active = await self._store.queue_counts()
        if not queued:
            return 0
        tenants, caps = self._tenants(), self._caps.caps()
        candidates = admissible(queued, active, tenants.quotas, caps)
        spent = await self._spent(candidates, tenants)
        # Full namespaces' heads are never read: a pass where nothing fits costs two counts.
        heads = await self._store.claim_queued_heads(
            candidates - spent,
            HEADS_PER_NAMESPACE,
            self._clock(),
            owner=self._claims.owner,
            lease_seconds=self._claims.lease_seconds,
        )
        if not heads:
            return 0
        async with self._claims.holding([run.id for run in heads]):
            return await self._promote(heads, active, tenants, caps, spent)

    async def _promote(
        self,
        heads: list[RunRecord],
        active: dict[tuple[str, str], int],
        tenants: TenantsSettings,
        caps: dict[str, int | None],
        spent: set[str],
    ) -> int:
        by_id = {run.id: run for run in heads}
        chosen = promotions(
            [Waiting(run.namespace, run.workspace, run.id) for run in heads],
            active,
            tenants.quotas,
            caps,
            spent,
        )
        admitted = 0
        for pick in chosen:
            run = by_id[pick.run_id]
            waited = max(0.0, (self._clock() - run.created_at).total_seconds())
            quotas, cap = tenants.quotas(run.namespace), caps.get(run.workspace)
            moved = await self._ledger.admit(
                run,
                f"admitted after {waited:.1f} s queued",
                fits=still_fits(quotas, cap),
                needs=promotion_needs(quotas, cap),
            )
            if moved is not None:
                admitted += 1
                self._metrics.queue_wait.labels(namespace=run.namespace).observe(waited)
        return admitted

    async def _spent(self, namespaces: set[str], tenants: TenantsSettings) -> set[str]:
        """The waiting namespaces at their run-hours budget: their queues hold this pass."""
        budgeted = [ns for ns in namespaces if tenants.quotas(ns).run_hours_per_day is not None]
        if not budgeted:
            return set()
        used = await self._store.run_seconds(budgeted, self._clock())
        return {ns for ns, seconds in used.items() if over_budget(seconds, tenants.quotas(ns))}

    async def run_forever(self) -> None:
        """Admit in passes until cancelled; a failed pass is logged and retried."""
        while True:
            try:
                admitted = await self.tick()
            except LakegateError as exc:
                log.warning("admission_pass_failed", error=exc.message)
                admitted = 0
            if admitted == 0:
                # A run ending frees capacity at once; a policy change is seen on the next pass.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_seconds)
                self._wake.clear()
