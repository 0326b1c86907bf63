"""The Store's webhook-delivery methods on SQLite: claims, settlements, dead rows, endpoints.

A mixin of ``SqliteStore`` (which provides ``_run``), kept apart so the ledger's module stays
about runs. Every method is one transaction on the store's thread, like the rest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import TypeVar

from gateway.store._sqlite_connection import Body
from gateway.store._sqlite_sql import check_limit, decode_outbox, from_us, to_us
from gateway.store.base import DisabledEndpoint, OutboxEntry, Settle, Settlement

T = TypeVar("T")

# The head of each run's unsettled events only: a later event waits for the earlier one.
CLAIM = """
UPDATE outbox SET lease_until = :lease, lease_owner = :owner
WHERE id IN (
    SELECT o.id FROM outbox AS o
    WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= :now
      AND (o.lease_until IS NULL OR o.lease_until <= :now)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS e
          WHERE e.run_id = o.run_id AND e.id < o.id
            AND e.delivered_at IS NULL AND e.dead_at IS NULL)
    ORDER BY o.next_attempt_at, o.id LIMIT :limit)
RETURNING *
"""

SETTLE = """
UPDATE outbox SET
    attempts = :attempts, last_status = :status, last_error = :error, endpoint = :endpoint,
    lease_until = NULL,
    delivered_at = CASE WHEN :outcome = 'delivered' THEN :at END,
    dead_at = CASE WHEN :outcome = 'dead' THEN :at END,
    next_attempt_at = CASE WHEN :outcome = 'retry' THEN :next ELSE next_attempt_at END
WHERE id = :id AND delivered_at IS NULL AND dead_at IS NULL
  AND (lease_owner IS NULL OR lease_owner = :owner)
"""

RENEW = """
UPDATE outbox SET lease_until = :until
WHERE lease_owner = :owner AND lease_until IS NOT NULL AND delivered_at IS NULL
  AND dead_at IS NULL AND id IN (SELECT value FROM json_each(:ids))
RETURNING id
"""

REDELIVER = """
UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = ?, lease_until = NULL,
    last_error = ''
WHERE namespace = ? AND dead_at IS NOT NULL
  AND (? IS NULL OR id IN (SELECT value FROM json_each(?)))
RETURNING id
"""


class SqliteOutbox:
    """The outbox half of ``SqliteStore``."""

    async def _run(self, body: Body[T], *, write: bool) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    async def claim_outbox(
        self, now: datetime, *, owner: str, limit: int, lease_seconds: float
    ) -> list[OutboxEntry]:
        check_limit(limit)
        at = to_us(now)
        params = {"now": at, "lease": at + int(lease_seconds * 1_000_000), "limit": limit,
                  "owner": owner}  # fmt: skip

        def body(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(CLAIM, params).fetchall()
            return sorted((decode_outbox(row) for row in rows), key=lambda e: e.id)

        return await self._run(body, write=True)

    async def renew_outbox(
        self, entry_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        if not entry_ids:
            return set()
        until = to_us(now) + int(lease_seconds * 1_000_000)
        ids = "[" + ",".join(str(int(i)) for i in entry_ids) + "]"
        params = {"until": until, "owner": owner, "ids": ids}

        def body(conn: sqlite3.Connection) -> set[int]:
            return {int(row["id"]) for row in conn.execute(RENEW, params).fetchall()}

        return await self._run(body, write=True)

    async def settle_outbox(self, settlements: Collection[Settlement], *, owner: str) -> int:
        rows = [
            {
                "id": s.entry_id,
                "outcome": Settle(s.outcome).value,
                "at": to_us(s.at),
                "next": None if s.next_attempt_at is None else to_us(s.next_attempt_at),
                "attempts": s.attempts,
                "status": s.status,
                "error": s.error,
                "endpoint": s.endpoint,
                "owner": owner,
            }
            for s in settlements
        ]
        if not rows:
            return 0
        return await self._run(
            lambda conn: max(conn.executemany(SETTLE, rows).rowcount, 0), write=True
        )

    async def list_dead_outbox(
        self, namespace: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[OutboxEntry]:
        check_limit(limit)
        params = (namespace, before_id, before_id, limit)

        def body(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(
                "SELECT * FROM outbox WHERE namespace = ? AND dead_at IS NOT NULL"
                " AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
                params,
            ).fetchall()
            return [decode_outbox(row) for row in rows]

        return await self._run(body, write=False)

    async def redeliver_outbox(
        self, namespace: str, now: datetime, *, entry_ids: Collection[int] | None = None
    ) -> list[int]:
        ids = None if entry_ids is None else "[" + ",".join(str(int(i)) for i in entry_ids) + "]"
        params = (to_us(now), namespace, ids, ids)

        def body(conn: sqlite3.Connection) -> list[int]:
            return sorted(int(row["id"]) for row in conn.execute(REDELIVER, params).fetchall())

        return await self._run(body, write=True)

    async def disable_endpoint(
        self, namespace: str, url: str, now: datetime, *, reason: str = ""
    ) -> None:
        params = (namespace, url, to_us(now), reason)

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO webhook_endpoints_disabled (namespace, url, disabled_at, reason)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                params,
            )

        await self._run(body, write=True)

    async def enable_endpoint(self, namespace: str, url: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM webhook_endpoints_disabled WHERE namespace = ? AND url = ?",
                (namespace, url),
            )
            return cursor.rowcount > 0

        return await self._run(body, write=True)

    async def disabled_endpoints(self, namespace: str | None = None) -> list[DisabledEndpoint]:
        def body(conn: sqlite3.Connection) -> list[DisabledEndpoint]:
            rows = conn.execute(
                "SELECT * FROM webhook_endpoints_disabled WHERE ? IS NULL OR namespace = ?"
                " ORDER BY disabled_at, namespace, url",
                (namespace, namespace),
            ).fetchall()
            return [
                DisabledEndpoint(r["namespace"], r["url"], from_us(r["disabled_at"]), r["reason"])
                for r in rows
            ]

        return await self._run(body, write=False)

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        def body(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
            rows = conn.execute(
                "SELECT namespace, CASE WHEN dead_at IS NULL THEN 'pending' ELSE 'dead' END"
                " AS status, count(*) AS n FROM outbox WHERE delivered_at IS NULL"
                " GROUP BY namespace, status"
            ).fetchall()
            return {(r["namespace"], r["status"]): int(r["n"]) for r in rows}

        return await self._run(body, write=False)
