"""This replica's claims on runs: what it holds, kept alive while it works, let go after.

Replicas on one ledger share the background work by claiming it (``gateway.store.leases``):
the poller claims due runs and the groups it refreshes, the admission queue claims the heads
it promotes. ``Claims.holding`` is the one place a claim is kept: while the work inside runs,
a task renews the leases every third of their time, so a slow poll keeps what it holds; on
the way out, however it leaves, the leases are released, so the runs are free for any replica
when next due. A replica that dies renews nothing, and the others take its work when its
leases run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection

from gateway.errors import LakegateError
from gateway.logs import get_logger
from gateway.runs.types import Clock, utcnow
from gateway.settings.process import DEFAULT_LEASE_SECONDS
from gateway.store.base import Store
from gateway.tasks import stop

log = get_logger(__name__)


class Claims:
    """Claims of one replica (``owner``) on one ledger, with their renewal and release.

    ``lease_seconds`` is how long a claim lasts unrenewed (``store.lease_seconds``): how long a
    dead replica's work waits for another.
    """

    def __init__(
        self,
        store: Store,
        owner: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock = utcnow,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._clock = clock
        # How many ``holding`` blocks hold each run: a group's refresh holds, inside the tick's
        # hold, runs the tick claimed; only the last block out lets a run go.
        self._holds: Counter[int] = Counter()

    @contextlib.asynccontextmanager
    async def holding(self, run_ids: Collection[int]) -> AsyncIterator[None]:
        """Keep ``run_ids`` claimed while the body runs; release them when it ends."""
        ids = frozenset(run_ids)
        if not ids:
            yield
            return
        began = time.time()
        self._holds.update(ids)
        renewer = asyncio.create_task(self._renew(ids), name="lease-renewal")
        try:
            yield
        finally:
            await stop(renewer)
            self._holds.subtract(ids)
            free = {run_id for run_id in ids if self._holds[run_id] <= 0}
            for run_id in free:
                del self._holds[run_id]
            # Wall-clock times, taken before the release, so the span logged is within the
            # claim: the claims of replicas on one host can be laid side by side.
            log.debug("claims_held", owner=self.owner, run_ids=sorted(ids), began=began,
                      ended=time.time())  # fmt: skip
            # Shielded: a cancelled poll still lets go, or its runs would wait out the lease.
            await asyncio.shield(self._release(frozenset(free)))

    async def _renew(self, ids: frozenset[int]) -> None:
        held = ids
        while held:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                kept = await self._store.renew_leases(
                    held, self._clock(), owner=self.owner, lease_seconds=self.lease_seconds
                )
            except LakegateError as exc:
                # Tried again at the next third; the lease has two of them left.
                log.warning("lease_renewal_failed", runs=len(held), error=exc.message)
                continue
            if lost := held - kept:
                # Another replica took these over: our writes on them are fenced off now.
                log.warning("leases_lost", owner=self.owner, run_ids=sorted(lost))
            held = frozenset(kept)

    async def _release(self, ids: frozenset[int]) -> None:
        if not ids:
            return
        try:
            await self._store.release_leases(ids, owner=self.owner)
        except LakegateError as exc:
            # The leases run out by themselves; until then the runs wait.
            log.warning("lease_release_failed", runs=len(ids), error=exc.message)
