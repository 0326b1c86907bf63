"""The Store's webhook-delivery methods on PostgreSQL: claims, settlements, dead rows, endpoints.

A mixin of ``PostgresStore`` (which provides ``_run``). Several replicas claim
from one outbox: a claim locks the due rows it picks with ``FOR UPDATE SKIP LOCKED``, so two
claims running at once take disjoint rows instead of waiting for each other, and it leases
them (owner, expiry), so a later claim leaves them alone until the lease runs out or the row
is settled. A row re-checked after another claim committed is seen leased and skipped. The
owner stays on the row after it is settled: it is the fence a late settlement is checked by.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from gateway.store._pg_connection import Body, Conn
from gateway.store._pg_sql import check_limit, decode_outbox, utc
from gateway.store.base import DisabledEndpoint, OutboxEntry, Settle, Settlement

T = TypeVar("T")

# The head of each run's unsettled events only: a later event waits for the earlier one.
CLAIM = """
WITH due AS (
    SELECT o.id FROM outbox AS o
    WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= $1
      AND (o.lease_until IS NULL OR o.lease_until <= $1)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS e
          WHERE e.run_id = o.run_id AND e.id < o.id
            AND e.delivered_at IS NULL AND e.dead_at IS NULL)
    ORDER BY o.next_attempt_at, o.id LIMIT $3
    FOR UPDATE OF o SKIP LOCKED)
UPDATE outbox SET lease_until = $2, lease_owner = $4 FROM due WHERE outbox.id = due.id
RETURNING outbox.*
"""

SETTLE = """
UPDATE outbox SET
    attempts = $3, last_status = $4, last_error = $5, endpoint = $6,
    lease_until = NULL,
    delivered_at = CASE WHEN $2 = 'delivered' THEN $7::timestamptz END,
    dead_at = CASE WHEN $2 = 'dead' THEN $7::timestamptz END,
    next_attempt_at = CASE WHEN $2 = 'retry' THEN $8::timestamptz ELSE next_attempt_at END
WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL
  AND (lease_owner IS NULL OR lease_owner = $9)
"""

RENEW = """
UPDATE outbox SET lease_until = $2
WHERE lease_owner = $3 AND lease_until IS NOT NULL AND delivered_at IS NULL
  AND dead_at IS NULL AND id = ANY($1::bigint[])
RETURNING id
"""

REDELIVER = """
UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = $1, lease_until = NULL,
    last_error = ''
WHERE namespace = $2 AND dead_at IS NOT NULL AND ($3::bigint[] IS NULL OR id = ANY($3))
RETURNING id
"""


def affected(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresOutbox:
    """The outbox half of ``PostgresStore``."""

    async def _run(
        self, body: Body[T], *, write: bool, snapshot: bool = False
    ) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    async def claim_outbox(
        self, now: datetime, *, owner: str, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        check_limit(limit)
        at = utc(now)
        until = at + timedelta(seconds=lease_seconds)

        async def body(conn: Conn) -> list[OutboxEntry]:
            rows = await conn.fetch(CLAIM, at, until, limit, owner)
            return sorted((decode_outbox(row) for row in rows), key=lambda e: e.id)

        return await self._run(body, write=True)

    async def renew_outbox(
        self, entry_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        if not entry_ids:
            return set()
        until = utc(now) + timedelta(seconds=lease_seconds)
        ids = [int(i) for i in entry_ids]

        async def body(conn: Conn) -> set[int]:
            return {int(row["id"]) for row in await conn.fetch(RENEW, ids, until, owner)}

        return await self._run(body, write=True)

    async def settle_outbox(self, settlements: Collection[Settlement], *, owner: str) -> int:
        rows = [
            (s.entry_id, Settle(s.outcome).value, s.attempts, s.status, s.error, s.endpoint,
             utc(s.at), None if s.next_attempt_at is None else utc(s.next_attempt_at), owner)
            for s in settlements
        ]  # fmt: skip
        if not rows:
            return 0

        async def body(conn: Conn) -> int:
            return sum([affected(await conn.execute(SETTLE, *row)) for row in rows])

        return await self._run(body, write=True)

    async def list_dead_outbox(
        self, namespace: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[OutboxEntry]:
        check_limit(limit)

        async def body(conn: Conn) -> list[OutboxEntry]:
            rows = await conn.fetch(
                "SELECT * FROM outbox WHERE namespace = $1 AND dead_at IS NOT NULL"
                " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                namespace,
                before_id,
                limit,
            )
            return [decode_outbox(row) for row in rows]

        return await self._run(body, write=False)

    async def redeliver_outbox(
        self, namespace: str, now: datetime, *, entry_ids: Collection[int] | None = None
    ) -> list[int]:
        at = utc(now)
        ids = None if entry_ids is None else [int(i) for i in entry_ids]

        async def body(conn: Conn) -> list[int]:
            return sorted(int(row["id"]) for row in await conn.fetch(REDELIVER, at, namespace, ids))

        return await self._run(body, write=True)

    async def disable_endpoint(
        self, namespace: str, url: str, now: datetime, *, reason: str = ""
    ) -> None:
        at = utc(now)

        async def body(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO webhook_endpoints_disabled (namespace, url, disabled_at, reason)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                namespace,
                url,
                at,
                reason,
            )

        await self._run(body, write=True)

    async def enable_endpoint(self, namespace: str, url: str) -> bool:
        async def body(conn: Conn) -> bool:
            status = await conn.execute(
                "DELETE FROM webhook_endpoints_disabled WHERE namespace = $1 AND url = $2",
                namespace,
                url,
            )
            return affected(status) > 0

        return await self._run(body, write=True)

    async def disabled_endpoints(self, namespace: str | None = None) -> list[DisabledEndpoint]:
        async def body(conn: Conn) -> list[DisabledEndpoint]:
            rows = await conn.fetch(
                "SELECT * FROM webhook_endpoints_disabled WHERE $1::text IS NULL OR namespace = $1"
                " ORDER BY disabled_at, namespace, url",
                namespace,
            )
            return [
                DisabledEndpoint(
                    r["namespace"], r["url"], r["disabled_at"].astimezone(UTC), r["reason"]
                )
                for r in rows
            ]

        return await self._run(body, write=False)

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        async def body(conn: Conn) -> dict[tuple[str, str], int]:
            rows = await conn.fetch(
                "SELECT namespace, CASE WHEN dead_at IS NULL THEN 'pending' ELSE 'dead' END"
                " AS status, count(*) AS n FROM outbox WHERE delivered_at IS NULL"
                " GROUP BY namespace, status"
            )
            return {(r["namespace"], r["status"]): int(r["n"]) for r in rows}

        return await self._run(body, write=False)
