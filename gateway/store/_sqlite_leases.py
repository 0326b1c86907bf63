"""The Store's leases on SQLite: claims, renewals, releases, the fence, and queue promotion.

SQLite serves one replica, but it keeps the promises of ``gateway.store.leases`` exactly, so
the contract suite is the same for every backend and a single replica behaves as one of many.
Every write takes the database lock up front (BEGIN IMMEDIATE), so a claim is one
read-and-lease no other connection can interleave with. A mixin of ``SqliteStore``, which
provides ``_run``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TypeVar

from gateway import model
from gateway.model import RunRecord, RunState
from gateway.store._sqlite_connection import Body
from gateway.store._sqlite_quota import queued_heads_of, usage
from gateway.store._sqlite_sql import (
    check_limit,
    decode_run,
    identity_ref_text,
    one,
    record_transition,
    row_state,
    states_param,
    to_us,
)
from gateway.store.base import Reschedule
from gateway.store.leases import Fits
from gateway.store.usage import EVERY_USAGE, UsageNeeds

T = TypeVar("T")

# A write given an owner touches only runs that owner claimed last, or that nobody claimed
# (the fence); a claim takes only runs free now: never leased, released, or run out.

# The poller's bookkeeping for a run whose state held: only while it still holds, and without
# moving updated_at; NULL leaves the message or the URL as it is. Fenced like every write.
RESCHEDULE_FENCED = """
UPDATE runs SET next_poll_at = :next, state_message = COALESCE(:message, state_message),
                run_page_url = COALESCE(:url, run_page_url)
WHERE id = :id AND state = :state
  AND (:owner IS NULL OR lease_owner IS NULL OR lease_owner = :owner)
"""
CLAIM_DUE = """
UPDATE runs SET lease_owner = :owner, lease_until = :until
WHERE id IN (
    SELECT id FROM runs
    WHERE next_poll_at <= :now AND state IN (SELECT value FROM json_each(:states))
      AND (lease_until IS NULL OR lease_until <= :now)
    ORDER BY next_poll_at, id LIMIT :limit)
RETURNING *
"""
# The group's active runs as ``ACTIVE_GROUP_RUNS`` reads them (the same partial index).
CLAIM_GROUP = """
UPDATE runs SET lease_owner = :owner, lease_until = :until
WHERE namespace = :ns AND identity_ref = :ref
  AND state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL
  AND ((lease_until IS NULL OR lease_until <= :now) OR lease_owner = :owner)
RETURNING *
"""
LEASE = "UPDATE runs SET lease_owner = :owner, lease_until = :until WHERE id = :id"
RENEW = """
UPDATE runs SET lease_until = :until
WHERE lease_owner = :owner AND id IN (SELECT value FROM json_each(:ids))
RETURNING id
"""
RELEASE = """
UPDATE runs SET lease_until = NULL
WHERE lease_owner = :owner AND lease_until IS NOT NULL AND id IN (SELECT value FROM json_each(:ids))
"""
PROMOTE = """
UPDATE runs SET state = 'SUBMITTING', state_message = :message, next_poll_at = :now,
                updated_at = :now
WHERE id = :id
RETURNING *
"""


def fenced_off(row: sqlite3.Row, owner: str | None) -> bool:
    """Whether a write by ``owner`` must leave the run alone: another replica claimed it."""
    return owner is not None and row["lease_owner"] not in (None, owner)


def _ids(run_ids: Collection[int]) -> str:
    return json.dumps(sorted({int(i) for i in run_ids}))


def _until(now: datetime, lease_seconds: float) -> tuple[int, int]:
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    at = to_us(now)
    return at, at + int(lease_seconds * 1_000_000)


def _claim_heads(
    conn: sqlite3.Connection,
    namespaces: Collection[str],
    per_namespace: int,
    params: dict[str, object],
) -> list[RunRecord]:
    heads = queued_heads_of(conn, namespaces, per_namespace)
    held = {
        row["namespace"]
        for row in conn.execute(
            "SELECT namespace FROM runs WHERE id IN (SELECT value FROM json_each(:ids))"
            " AND lease_until > :now AND lease_owner <> :owner",
            {**params, "ids": _ids([run.id for run in heads])},
        ).fetchall()
    }
    claimed = [run for run in heads if run.namespace not in held]
    conn.executemany(LEASE, [{**params, "id": run.id} for run in claimed])
    return claimed


class SqliteLeases:
    """The leases half of ``SqliteStore``."""

    async def _run(self, body: Body[T], *, write: bool) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    async def claim_due_runs(
        self,
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
        states: Collection[RunState],
        limit: int,
    ) -> list[RunRecord]:
        check_limit(limit)
        at, until = _until(now, lease_seconds)
        params = {"owner": owner, "until": until, "now": at, "states": states_param(states),
                  "limit": limit}  # fmt: skip

        def body(conn: sqlite3.Connection) -> list[RunRecord]:
            runs = [decode_run(row) for row in conn.execute(CLAIM_DUE, params).fetchall()]
            return sorted(runs, key=lambda run: (run.next_poll_at or now, run.id))

        return await self._run(body, write=True)

    async def claim_group(
        self,
        namespace: str,
        identity_ref: Mapping[str, str],
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
    ) -> list[RunRecord]:
        at, until = _until(now, lease_seconds)
        params = {"owner": owner, "until": until, "now": at, "ns": namespace,
                  "ref": identity_ref_text(identity_ref)}  # fmt: skip

        def body(conn: sqlite3.Connection) -> list[RunRecord]:
            runs = [decode_run(row) for row in conn.execute(CLAIM_GROUP, params).fetchall()]
            return sorted(runs, key=lambda run: run.id, reverse=True)

        return await self._run(body, write=True)

    async def claim_queued_heads(
        self,
        namespaces: Collection[str],
        per_namespace: int,
        now: datetime,
        *,
        owner: str,
        lease_seconds: float,
    ) -> list[RunRecord]:
        check_limit(per_namespace)
        if not namespaces:
            return []
        at, until = _until(now, lease_seconds)
        params: dict[str, object] = {"owner": owner, "until": until, "now": at}
        return await self._run(
            lambda conn: _claim_heads(conn, namespaces, per_namespace, params), write=True
        )

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
        at = to_us(now)

        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            if row is None or row_state(row) is not RunState.QUEUED or fenced_off(row, owner):
                return None
            model.transition(RunState.QUEUED, RunState.SUBMITTING)
            if not fits(usage(conn, row["namespace"], row["workspace"], at, needs)):
                return None
            updated = conn.execute(PROMOTE, {"id": run_id, "now": at, "message": message})
            promoted = decode_run(updated.fetchall()[0])
            record_transition(conn, run_id, RunState.QUEUED, RunState.SUBMITTING, at, message)
            return promoted

        return await self._run(body, write=True)

    async def reschedule_runs(
        self, updates: Collection[Reschedule], *, owner: str | None = None
    ) -> int:
        rows = []
        for update in updates:
            state = update.due_state()
            rows.append(
                {"next": to_us(update.next_poll_at), "message": update.state_message,
                 "url": update.run_page_url, "id": update.run_id, "state": state, "owner": owner}
            )  # fmt: skip
        if not rows:
            return 0
        # One transaction, so one fsync, for all of them.
        return await self._run(
            lambda conn: max(conn.executemany(RESCHEDULE_FENCED, rows).rowcount, 0), write=True
        )

    async def renew_leases(
        self, run_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        if not run_ids:
            return set()
        _, until = _until(now, lease_seconds)
        params = {"owner": owner, "until": until, "ids": _ids(run_ids)}

        def body(conn: sqlite3.Connection) -> set[int]:
            return {int(row["id"]) for row in conn.execute(RENEW, params).fetchall()}

        return await self._run(body, write=True)

    async def release_leases(self, run_ids: Collection[int], *, owner: str) -> int:
        if not run_ids:
            return 0
        params = {"owner": owner, "ids": _ids(run_ids)}
        return await self._run(
            lambda conn: max(conn.execute(RELEASE, params).rowcount, 0), write=True
        )
