"""The PostgreSQL ledger's admission reads: a namespace's usage, the queue's heads, active
counts, run time.

``usage`` runs inside ``create_run``'s transaction, after its advisory locks: every statement
reads what was committed when it started, and no admission on the same namespace or
workspace can commit in between, so what admission sees is what the insert commits against.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg

from gateway.model import ACTIVE_STATES, NamespaceUsage, RunRecord, RunState
from gateway.store._pg_connection import Body, Conn
from gateway.store._pg_sql import check_limit, decode_run, states_param, utc
from gateway.store.base import (
    EVERY_USAGE,
    Admission,
    Admit,
    RateRule,
    UsageNeeds,
    UsageWanted,
)

T = TypeVar("T")

# As the SQLite ledger reads it: the namespace's newest runs within the hour, at most RATE_ROWS.
RATE_WINDOW = timedelta(hours=1)
RATE_ROWS = 1_024
_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)

# The three counts admission reads, in one round trip.
COUNTS = """
SELECT
    (SELECT count(*) FROM runs WHERE namespace = $1 AND state = ANY($3::text[])) AS active,
    (SELECT count(*) FROM runs WHERE namespace = $1 AND state = 'QUEUED') AS queued,
    (SELECT count(*) FROM runs WHERE workspace = $2 AND state = ANY($3::text[]) AND $4)
        AS workspace
"""
RECENT = """
SELECT created_at FROM runs WHERE namespace = $1 AND created_at > $2
ORDER BY created_at DESC LIMIT $3
"""
# admission.rate_wait's conformance test in SQL, as the SQLite ledger does it: rn is a row's
# rank, newest first (an array keeps its subquery's order, and WITH ORDINALITY numbers it; a
# window function costs more per row), and each term is rate_wait's in float8. An age within
# the hour is an interval of microseconds alone, which date_part gives as time / 1000000.0:
# the correctly rounded quotient Python's total_seconds() is. (extract() would go through
# numeric, exact too, but slower.)
RATE_WAIT = """
SELECT max((rn + 1 - $2)::float8 / $3::float8 - date_part('epoch', $4 - created_at))
FROM unnest(ARRAY(
    SELECT created_at FROM runs WHERE namespace = $1 AND created_at > $5
    ORDER BY created_at DESC LIMIT $6
)) WITH ORDINALITY AS recent (created_at, rn) WHERE rn >= $2
"""
LAST_MINUTE = """
SELECT count(*) FROM (
    SELECT 1 FROM runs WHERE namespace = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT $3
) AS last_minute
"""
# TERMINAL_STATES as a literal, the predicate of the partial index runs_ended (migration 3).
ENDED_STATES = (
    "'CANCELED', 'FAILED', 'INTERNAL_ERROR', 'REJECTED', 'SKIPPED', 'SUCCEEDED', 'TIMED_OUT'"
)
MEAN_RUN = f"""
SELECT extract(epoch FROM avg(updated_at - created_at))::float8 FROM runs
WHERE namespace = $1 AND created_at > $2 AND state IN ({ENDED_STATES})
"""  # noqa: S608 - a constant, no input
# Repeats the WHERE of the partial index runs_queued.
QUEUED_HEADS = """
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY namespace ORDER BY id) AS position FROM runs
    WHERE state = 'QUEUED'
) AS heads WHERE position <= $1 ORDER BY namespace, id
"""
QUEUED_HEADS_OF = """
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY namespace ORDER BY id) AS position FROM runs
    WHERE state = 'QUEUED' AND namespace = ANY($1::text[])
) AS heads WHERE position <= $2 ORDER BY namespace, id
"""
QUEUED_COUNTS = """
SELECT workspace, namespace, count(*) AS n FROM runs WHERE state = 'QUEUED'
GROUP BY workspace, namespace
"""
# The runs that held a slot in the window [since, now]: still active, or ended after since;
# each a range of runs_run_time.
_SPANS = """
SELECT started_at, ended_at FROM runs
WHERE namespace = $1 AND started_at IS NOT NULL AND ended_at IS NULL AND started_at < $2
UNION ALL
SELECT started_at, ended_at FROM runs
WHERE namespace = $1 AND started_at IS NOT NULL AND ended_at > $3 AND started_at < $2
"""
RUN_SPANS = _SPANS + "ORDER BY started_at"
RUN_SECONDS = """
SELECT coalesce(extract(epoch FROM
    sum(least(coalesce(ended_at, $2), $2) - greatest(started_at, $3))), 0)::float8
FROM (
    SELECT started_at, ended_at FROM runs
    WHERE namespace = $1 AND started_at IS NOT NULL AND ended_at IS NULL AND started_at < $2
    UNION ALL
    SELECT started_at, ended_at FROM runs
    WHERE namespace = $1 AND started_at IS NOT NULL AND ended_at > $3 AND started_at < $2
) AS spans
"""
ACTIVE_COUNTS = """
SELECT workspace, namespace, count(*) AS n FROM runs
WHERE state = ANY($1::text[]) GROUP BY workspace, namespace
"""


async def usage(
    conn: Conn, namespace: str, workspace: str, at: datetime, needs: UsageNeeds = EVERY_USAGE
) -> NamespaceUsage:
    """The namespace's usage at ``at``, with its workspace's active runs; the day's run time,
    the mean run time and the rate window as ``needs`` says."""
    counts = await conn.fetchrow(
        COUNTS, namespace, workspace, states_param(ACTIVE_STATES), needs.workspace_active
    )
    assert counts is not None  # an aggregate without GROUP BY always yields its row
    found = NamespaceUsage(
        namespace=namespace,
        active=int(counts["active"]),
        queued=int(counts["queued"]),
        workspace_active=int(counts["workspace"]),
        mean_run_seconds=await mean_run(conn, namespace, at) if needs.mean_run else None,
        mean_run_read=needs.mean_run,
        run_seconds=await run_seconds(conn, namespace, at) if needs.run_hours else 0.0,
    )
    if needs.rate is not None:
        wait, last_minute = await rate_verdict(conn, namespace, at, needs.rate)
        return dataclasses.replace(found, rate_wait_seconds=wait, rate_last_minute=last_minute)
    if not needs.recent:
        return found
    recent = await conn.fetch(RECENT, namespace, at - RATE_WINDOW, RATE_ROWS)
    return dataclasses.replace(
        found, recent_submissions=tuple(row["created_at"].astimezone(UTC) for row in recent)
    )


def rate_horizon(rule: RateRule) -> timedelta:
    """How far back a submission can still hold the bucket back (see the SQLite ledger's
    ``rate_horizon_us``); never more than the rate window."""
    seconds = max(0, RATE_ROWS + 1 - rule.burst) / (rule.per_minute / 60.0)
    return min(RATE_WINDOW, timedelta(microseconds=math.ceil(seconds * 1_000_000) + 1))


async def rate_verdict(
    conn: Conn, namespace: str, at: datetime, rule: RateRule
) -> tuple[float, int]:
    """``rate_wait`` over the namespace's rate window at ``at``, and when it is over the
    bucket, how many of the window's submissions came in the last minute (else 0)."""
    since = at - rate_horizon(rule)
    worst = await conn.fetchval(
        RATE_WAIT, namespace, rule.burst, rule.per_minute / 60.0, at, since, RATE_ROWS
    )
    wait = max(0.0, 0.0 if worst is None else float(worst))
    if wait == 0.0:
        return wait, 0
    return wait, int(await conn.fetchval(LAST_MINUTE, namespace, at - _MINUTE, RATE_ROWS))


async def mean_run(conn: Conn, namespace: str, at: datetime) -> float | None:
    """How long the namespace's runs created in the day before ``at`` and ended took, on
    average, in seconds; None if none ended."""
    mean = await conn.fetchval(MEAN_RUN, namespace, at - _DAY)
    return None if mean is None else float(mean)


async def admitted(
    conn: Conn, admit: Admit, new: tuple[str, str], at: datetime, needs: UsageNeeds
) -> RunState | Admission:
    """``admit``'s choice for a new run of (namespace, workspace) ``new`` at ``at``, given
    what ``needs`` names; asked for the mean run time it left out, reads it and asks again
    (``admit`` is pure, so its first answer had no effect)."""
    namespace, workspace = new
    seen = await usage(conn, namespace, workspace, at, needs)
    try:
        return admit(seen)
    except UsageWanted:
        if seen.mean_run_read:
            raise
    measured = await mean_run(conn, namespace, at)
    return admit(dataclasses.replace(seen, mean_run_seconds=measured, mean_run_read=True))


async def run_seconds(conn: Conn, namespace: str, at: datetime) -> float:
    """The namespace's run time within the day before ``at``, in seconds."""
    return float(await conn.fetchval(RUN_SECONDS, namespace, at, at - _DAY))


async def run_spans(
    conn: Conn, namespace: str, at: datetime
) -> list[tuple[datetime, datetime | None]]:
    rows = await conn.fetch(RUN_SPANS, namespace, at, at - _DAY)
    return [(row["started_at"].astimezone(UTC), _maybe(row["ended_at"])) for row in rows]


def _maybe(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _pairs(rows: list[asyncpg.Record]) -> dict[tuple[str, str], int]:
    return {(row["workspace"], row["namespace"]): int(row["n"]) for row in rows}


async def active_counts(conn: Conn) -> dict[tuple[str, str], int]:
    """Active runs per (workspace, namespace); pairs with none are absent."""
    return _pairs(await conn.fetch(ACTIVE_COUNTS, states_param(ACTIVE_STATES)))


async def _heads(conn: Conn, sql: str, *params: object) -> list[RunRecord]:
    return [decode_run(row) for row in await conn.fetch(sql, *params)]


class QuotaReads:
    """The admission reads of ``PostgresStore``, each one read-only snapshot."""

    async def _run(self, body: Body[T], *, write: bool, snapshot: bool = False) -> T:
        raise NotImplementedError  # pragma: no cover - PostgresStore provides it

    async def usage(self, namespace: str, workspace: str, now: datetime) -> NamespaceUsage:
        at = utc(now)
        return await self._run(
            lambda conn: usage(conn, namespace, workspace, at), write=False, snapshot=True
        )

    async def queued_heads(self, per_namespace: int) -> list[RunRecord]:
        check_limit(per_namespace)
        return await self._run(lambda conn: _heads(conn, QUEUED_HEADS, per_namespace), write=False)

    async def active_counts(self) -> dict[tuple[str, str], int]:
        return await self._run(active_counts, write=False)

    async def queue_counts(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        async def body(conn: Conn) -> tuple[dict[tuple[str, str], int], ...]:
            return _pairs(await conn.fetch(QUEUED_COUNTS)), await active_counts(conn)

        queued, active = await self._run(body, write=False, snapshot=True)
        return queued, active

    async def queued_heads_of(
        self, namespaces: Collection[str], per_namespace: int
    ) -> list[RunRecord]:
        check_limit(per_namespace)
        if not namespaces:
            return []
        names = sorted(set(namespaces))
        return await self._run(
            lambda conn: _heads(conn, QUEUED_HEADS_OF, names, per_namespace), write=False
        )

    async def run_spans(
        self, namespace: str, now: datetime
    ) -> list[tuple[datetime, datetime | None]]:
        at = utc(now)
        return await self._run(lambda conn: run_spans(conn, namespace, at), write=False)

    async def run_seconds(self, namespaces: Collection[str], now: datetime) -> dict[str, float]:
        at, names = utc(now), sorted(set(namespaces))

        async def body(conn: Conn) -> dict[str, float]:
            return {ns: await run_seconds(conn, ns, at) for ns in names}

        return await self._run(body, write=False, snapshot=len(names) > 1)
