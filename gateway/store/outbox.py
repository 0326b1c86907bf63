"""The outbox half of the ledger's contract: events written with state changes, delivered.

``Store.transition`` writes an outbox row in the same transaction as the state change that
causes it; the webhook dispatcher claims due rows with a lease, settles each attempt, and
operators list and redeliver dead rows. Split from ``gateway.store.base`` so each protocol
stays readable; ``Store`` is both. The same promises hold as there: timezone-aware times,
``StoreError`` for backend failures, and no credential in any row.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An outbox row as stored; ``id`` is stable and unique, fit for a webhook-id.

    ``payload`` is the event exactly as given to ``Store.transition``; ``event_type`` is its
    ``"type"``.
    """

    id: int
    run_id: int
    namespace: str
    event_type: str
    payload: Mapping[str, Any]
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    dead_at: datetime | None = None
    last_status: int | None = None
    last_error: str = ""
    endpoint: str | None = None


class Settle(enum.StrEnum):
    """How a delivery attempt leaves its outbox row."""

    DELIVERED = "delivered"  # done; ``endpoint`` None means there was nowhere to send it
    RETRY = "retry"  # due again at ``next_attempt_at``
    DEAD = "dead"  # no more tries: listed as dead until redelivered


@dataclass(frozen=True, slots=True)
class Settlement:
    """The result of one delivery attempt of outbox row ``entry_id``."""

    entry_id: int
    outcome: Settle
    at: datetime
    attempts: int
    next_attempt_at: datetime | None = None
    status: int | None = None
    error: str = ""
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if (self.outcome is Settle.RETRY) != (self.next_attempt_at is not None):
            raise ValueError("a retry, and only a retry, has a next_attempt_at")


@dataclass(frozen=True, slots=True)
class DisabledEndpoint:
    """A namespace's webhook endpoint that answered 410 Gone; nothing goes there now."""

    namespace: str
    url: str
    disabled_at: datetime
    reason: str = ""


class OutboxStore(Protocol):
    """The outbox rows of the run ledger, as the webhook dispatcher and operators use them."""

    async def list_outbox(
        self, *, run_id: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        """Outbox rows, oldest first, of one run or of all runs."""
        ...

    # --- webhook delivery (the outbox as the dispatcher's queue) -------------------------------

    async def claim_outbox(
        self, now: datetime, *, owner: str, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` due rows to ``owner`` for delivery, oldest first.

        Due: neither delivered nor dead, ``next_attempt_at`` at or before ``now``, and not
        leased past ``now``. Only the oldest unsettled row of a run is ever due, so a run's
        events are delivered in the order they were written (a dead row no longer holds the
        run's later events back). The rows stay leased for ``lease_seconds`` (or as renewed)
        or until settled; a crashed dispatcher's lease runs out and the row is claimed again.
        A row keeps its last claimer's name after it is settled: the fence of ``settle_outbox``.
        """
        ...

    async def renew_outbox(
        self, entry_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        """Extend ``owner``'s unsettled claims on ``entry_ids`` to ``now + lease_seconds``.

        Returns the ids renewed; a row another dispatcher claimed meanwhile, or settled, is not.
        """
        ...

    async def settle_outbox(self, settlements: Collection[Settlement], *, owner: str) -> int:
        """Record ``owner``'s attempts' results in one transaction and release their leases.

        Returns how many rows were updated; a row already delivered or dead is left alone, and
        so is a row another dispatcher claimed since (``owner``'s lease ran out and it was
        taken over): a late settlement neither clears the new holder's lease nor overwrites
        its attempt. A row nobody ever claimed may be settled by anyone.
        DELIVERED sets ``delivered_at``, DEAD ``dead_at``, RETRY ``next_attempt_at``; each
        sets ``attempts``, ``last_status``, ``last_error`` and ``endpoint``.
        """
        ...

    async def list_dead_outbox(
        self, namespace: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[OutboxEntry]:
        """The namespace's dead rows, newest first, with ids below ``before_id``."""
        ...

    async def redeliver_outbox(
        self, namespace: str, now: datetime, *, entry_ids: Collection[int] | None = None
    ) -> list[int]:
        """Make the namespace's dead rows (those of ``entry_ids``, or all) due at ``now``.

        Each starts its schedule again (``attempts`` 0) and keeps its id, so its webhook-id
        is the same. Returns the ids made due; ids that are not dead rows of the namespace
        are ignored.
        """
        ...

    async def disable_endpoint(
        self, namespace: str, url: str, now: datetime, *, reason: str = ""
    ) -> None:
        """Stop deliveries to ``url`` for the namespace; disabling it again keeps the first."""
        ...

    async def enable_endpoint(self, namespace: str, url: str) -> bool:
        """Allow deliveries to ``url`` again; False when it was not disabled."""
        ...

    async def disabled_endpoints(self, namespace: str | None = None) -> list[DisabledEndpoint]:
        """Disabled endpoints of one namespace (or all), oldest first."""
        ...

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        """Rows per (namespace, "pending" or "dead"), for metrics; empty pairs are absent."""
        ...
