"""The leases half of the ledger's contract: background work shared by replicas that claim it.

Several replicas on one ledger share the poller's due runs, the submission retrier's SUBMITTING
runs and the admission queue's heads without electing a leader: each replica claims rows with
its ``owner`` (its replica id, ``server.replica_id``) and a lease that runs out at
``now + lease_seconds``. The promises, which every backend keeps (``tests/store``):

- A claim returns only runs nobody holds: unleased, or whose lease ran out by ``now``. Two
  claims, from any replicas, never both get a run while its lease lasts (PostgreSQL claims
  with ``FOR UPDATE SKIP LOCKED``: concurrent claimers skip each other's rows, never wait).
- A run keeps its last claimer's name after the lease is released or runs out. A write that
  ends or moves a claim (``transition``, ``update_run``, ``reschedule_runs`` given ``owner``)
  is applied only to a run whose owner is ``owner`` or that nobody ever claimed: once another
  replica took a run over, the first replica's late writes do nothing (None, or not counted).
  ``owner=None`` is not fenced: the request path, which holds no claims, writes as before.
- ``renew_leases`` extends only what ``owner`` still holds, and says which; a replica stops
  working on a run it did not get back. ``release_leases`` ends the claims at once, so the
  runs are free for any replica when next due, without waiting for the lease to run out.
- A replica that dies holds its claims until they run out; then any replica claims the work.
- ``promote_queued`` re-checks quotas under the same locks ``create_run`` takes, in one
  transaction, so admission limits hold whichever replica promotes.

Lease times are whole microseconds, as every time in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Protocol

from gateway.model import NamespaceUsage, RunRecord, RunState
from gateway.store.usage import EVERY_USAGE, UsageNeeds

# Called inside promote_queued's write transaction with the namespace's usage at that instant,
# as create_run's ``admit`` is (same rules: quick, no awaiting, maybe on the store's thread);
# True lets the run go.
Fits = Callable[[NamespaceUsage], bool]


class LeaseStore(Protocol):
    """Claims on runs, by replica: what the poller and the admission queue work from."""

    async def claim_due_runs(
        self,
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
        states: Collection[RunState],
        limit: int,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` due runs in ``states`` nobody holds; most overdue first.

        Due as in ``due_runs``. Every run returned is leased to ``owner`` until
        ``now + lease_seconds``; the caller acts on each and moves its ``next_poll_at`` on.
        """
        ...

    async def claim_group(
        self,
        namespace: str,
        identity_ref: Mapping[str, str],
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
    ) -> list[RunRecord]:
        """Lease the runs of ``active_runs_of_group`` that nobody else holds, and return them.

        Runs ``owner`` holds already are returned too (their lease extended): the poller
        claims a group's due runs, then the rest of the group it refreshes with them.
        """
        ...

    async def claim_queued_heads(
        self,
        namespaces: Collection[str],
        per_namespace: int,
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
    ) -> list[RunRecord]:
        """``queued_heads_of`` for the namespaces whose heads no other replica holds, leased.

        A namespace with any of its heads held by another replica is left out whole, so one
        replica at a time admits from a namespace's queue, oldest first.
        """
        ...

    async def promote_queued(
        self,
        run_id: int,
        now: datetime,
        *,
        owner: str,
        fits: Fits,
        message: str,
        needs: UsageNeeds = EVERY_USAGE,
    ) -> RunRecord | None:
        """QUEUED to SUBMITTING, due at ``now``, if ``fits`` says so, all in one transaction.

        ``fits`` sees the run's namespace usage (with its workspace's), what ``needs`` names of
        it, under the locks ``create_run`` takes. None, with nothing written, when the run is
        not QUEUED, is fenced off (another replica took it over) or does not fit. The claim
        stays until released: a poller claims the run, due at once, when the admitter lets it
        go.
        """
        ...

    async def renew_leases(
        self, run_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        """Extend ``owner``'s claims on ``run_ids`` to ``now + lease_seconds``; which it holds.

        A run another replica claimed meanwhile is not renewed and not in the answer.
        """
        ...

    async def release_leases(self, run_ids: Collection[int], *, owner: str) -> int:
        """End ``owner``'s claims on ``run_ids`` now; how many it still held."""
        ...
