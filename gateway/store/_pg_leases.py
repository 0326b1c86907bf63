"""The Store's leases on PostgreSQL: claims shared by replicas, renewals, releases, promotion.

A mixin of ``PostgresStore`` (which provides ``_run``). A claim picks its rows with ``FOR
UPDATE SKIP LOCKED``, so replicas claiming at once take disjoint rows instead of queueing
behind each other, and the lease condition is checked again on the row version it locks
(READ COMMITTED re-evaluates the WHERE of a row changed meanwhile): a row another claim leased
and committed first is left out. Promotion takes ``create_run``'s advisory locks (namespace,
then workspace) before it reads usage, so its quota decision and a concurrent submission's
are serialised across replicas.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from gateway import model
from gateway.model import RunRecord, RunState
from gateway.store._pg_connection import Body, Conn
from gateway.store._pg_locks import LOCK, NAMESPACE_LOCK, WORKSPACE_LOCK
from gateway.store._pg_quota import QUEUED_HEADS_OF, usage
from gateway.store._pg_sql import (
    check_limit,
    decode_run,
    record_transition,
    row_state,
    states_param,
    utc,
)
from gateway.store.leases import Fits
from gateway.store.usage import EVERY_USAGE, UsageNeeds

T = TypeVar("T")

_FREE = "(lease_until IS NULL OR lease_until <= $1)"
CLAIM_DUE = f"""
WITH due AS (
    SELECT id FROM runs
    WHERE next_poll_at <= $1 AND state = ANY($2::text[]) AND {_FREE}
    ORDER BY next_poll_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE runs SET lease_owner = $4, lease_until = $5 FROM due WHERE runs.id = due.id
RETURNING runs.*
"""  # noqa: S608 - a constant, no input in it
# The group's active runs as ACTIVE_GROUP_RUNS reads them (the same partial index).
CLAIM_GROUP = f"""
WITH grp AS (
    SELECT id FROM runs
    WHERE namespace = $2 AND identity_ref = $3
      AND state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL
      AND ({_FREE} OR lease_owner = $4)
    FOR UPDATE SKIP LOCKED)
UPDATE runs SET lease_owner = $4, lease_until = $5 FROM grp WHERE runs.id = grp.id
RETURNING runs.*
"""  # noqa: S608 - a constant, no input in it
# The poller's bookkeeping for a run whose state held, fenced: a run another replica claimed
# is left alone.
RESCHEDULE_FENCED = """
UPDATE runs SET next_poll_at = $1, state_message = COALESCE($2, state_message),
                run_page_url = COALESCE($3, run_page_url)
WHERE id = $4 AND state = $5 AND ($6::text IS NULL OR lease_owner IS NULL OR lease_owner = $6)
"""
# Locked in id order, so two claims of overlapping heads never deadlock.
LOCK_HEADS = "SELECT * FROM runs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"
LEASE = "UPDATE runs SET lease_owner = $2, lease_until = $3 WHERE id = ANY($1::bigint[])"
RENEW = """
UPDATE runs SET lease_until = $3 WHERE lease_owner = $2 AND id = ANY($1::bigint[]) RETURNING id
"""
RELEASE = """
UPDATE runs SET lease_until = NULL
WHERE lease_owner = $2 AND lease_until IS NOT NULL AND id = ANY($1::bigint[])
"""
PROMOTE = """
UPDATE runs SET state = 'SUBMITTING', state_message = $2, next_poll_at = $3, updated_at = $3
WHERE id = $1
RETURNING *
"""


def fenced_off(row: asyncpg.Record, owner: str | None) -> bool:
    """Whether a write by ``owner`` must leave the run alone: another replica claimed it."""
    return owner is not None and row["lease_owner"] not in (None, owner)


def _until(now: datetime, lease_seconds: float) -> tuple[datetime, datetime]:
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    at = utc(now)
    return at, at + timedelta(seconds=lease_seconds)


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def _claim_heads(
    conn: Conn, names: list[str], per_namespace: int, at: datetime, until: datetime, owner: str
) -> list[RunRecord]:
    heads = await conn.fetch(QUEUED_HEADS_OF, names, per_namespace)
    locked = await conn.fetch(LOCK_HEADS, [row["id"] for row in heads])
    # Another replica's live claim on any head keeps the whole namespace its own; a head it
    # promoted meanwhile is no head any more.
    held = {
        row["namespace"]
        for row in locked
        if row["lease_until"] is not None
        and row["lease_until"] > at
        and row["lease_owner"] != owner
    }
    claimed = [
        decode_run(row)
        for row in locked
        if row["namespace"] not in held and row_state(row) is RunState.QUEUED
    ]
    await conn.execute(LEASE, [run.id for run in claimed], owner, until)
    return sorted(claimed, key=lambda run: (run.namespace, run.id))


class PostgresLeases:
    """The leases half of ``PostgresStore``."""

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
        wanted = states_param(states)

        async def body(conn: Conn) -> list[RunRecord]:
            rows = await conn.fetch(CLAIM_DUE, at, wanted, limit, owner, until)
            runs = [decode_run(row) for row in rows]
            return sorted(runs, key=lambda run: (run.next_poll_at or at, run.id))

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
        ref = dict(identity_ref)

        async def body(conn: Conn) -> list[RunRecord]:
            rows = await conn.fetch(CLAIM_GROUP, at, namespace, ref, owner, until)
            return sorted((decode_run(row) for row in rows), key=lambda run: -run.id)

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
        names = sorted(set(namespaces))
        return await self._run(
            lambda conn: _claim_heads(conn, names, per_namespace, at, until, owner), write=True
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
        at = utc(now)

        async def body(conn: Conn) -> RunRecord | None:
            # Namespace and workspace never change, so they can be read before the locks.
            where = await conn.fetchrow(
                "SELECT namespace, workspace FROM runs WHERE id = $1", run_id
            )
            if where is None:
                return None
            await conn.execute(LOCK, NAMESPACE_LOCK, where["namespace"])
            await conn.execute(LOCK, WORKSPACE_LOCK, where["workspace"])
            row = await conn.fetchrow("SELECT * FROM runs WHERE id = $1 FOR UPDATE", run_id)
            if row is None or row_state(row) is not RunState.QUEUED or fenced_off(row, owner):
                return None
            model.transition(RunState.QUEUED, RunState.SUBMITTING)
            if not fits(await usage(conn, row["namespace"], row["workspace"], at, needs)):
                return None
            promoted = await conn.fetchrow(PROMOTE, run_id, message, at)
            assert promoted is not None  # the row is locked by this transaction
            await record_transition(conn, run_id, RunState.QUEUED, RunState.SUBMITTING, at, message)
            return decode_run(promoted)

        return await self._run(body, write=True)

    async def renew_leases(
        self, run_ids: Collection[int], now: datetime, *, owner: str, lease_seconds: float
    ) -> set[int]:
        if not run_ids:
            return set()
        _, until = _until(now, lease_seconds)
        ids = sorted({int(i) for i in run_ids})

        async def body(conn: Conn) -> set[int]:
            return {int(row["id"]) for row in await conn.fetch(RENEW, ids, owner, until)}

        return await self._run(body, write=True)

    async def release_leases(self, run_ids: Collection[int], *, owner: str) -> int:
        if not run_ids:
            return 0
        ids = sorted({int(i) for i in run_ids})

        async def body(conn: Conn) -> int:
            return _count(await conn.execute(RELEASE, ids, owner))

        return await self._run(body, write=True)
