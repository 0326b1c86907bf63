"""The SQLite ledger's admission reads: a namespace's usage, the queue's heads, active counts,
run time.

Every function takes the connection of the transaction it is part of and runs on the store's
thread; ``usage`` runs inside ``create_run``'s write transaction, so what admission sees is
what the insert commits against.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import TypeVar

from gateway.model import ACTIVE_STATES, NamespaceUsage, RunRecord, RunState
from gateway.store._sqlite_connection import Body
from gateway.store._sqlite_sql import check_limit, decode_run, from_us, states_param, to_us
from gateway.store.base import (
    EVERY_USAGE,
    Admission,
    Admit,
    RateRule,
    UsageNeeds,
    UsageWanted,
)

T = TypeVar("T")

# The rate window the ledger reads on each submission: the newest runs of the namespace
# created within RATE_WINDOW_US, at most RATE_ROWS of them. QuotaSettings bounds burst and
# submissions_per_minute so that a token bucket's verdict never needs more.
RATE_WINDOW_US = 3_600 * 1_000_000
RATE_ROWS = 1_024
_DAY_US = 86_400 * 1_000_000
_MINUTE_US = 60 * 1_000_000

# The counts come from run_counts (migration 12), which triggers keep beside the runs: a few
# rows per namespace, where a count(*) over the runs read every run it counted. All of a
# namespace's (or workspace's) rows at once, summed here: both of the namespace's counts in
# one statement with no json_each list to parse, 3.2 us where two sums took 9-10 us, inside
# every accepted submit's write transaction.
NAMESPACE_COUNTS = "SELECT state, n FROM run_counts WHERE namespace = ?"
WORKSPACE_COUNTS = "SELECT state, n FROM run_counts WHERE workspace = ?"
_ACTIVE = frozenset(state.value for state in ACTIVE_STATES)
RECENT = """
SELECT created_at FROM runs WHERE namespace = ? AND created_at > ?
ORDER BY created_at DESC LIMIT ?
"""
# admission.rate_wait's conformance test over the same window, without handing 1,024 rows
# to Python: each term is rate_wait's, in the same double arithmetic (an integer over a REAL,
# microseconds over 1e6), so the verdict is bit for bit the same. A row's rank is its index
# in a JSON array of the window, newest first, plus one: json_each numbers the elements,
# where row_number() costs several times as much per row. The array is built in the order the
# subquery yields its rows (a subquery with a LIMIT is never flattened into an aggregate, so
# its ORDER BY holds), and that order is the index runs_namespace_created's, read backwards.
RATE_WAIT = """
SELECT max((key + 2 - :burst) / :rate - (:at - value) / 1000000.0) AS wait
FROM json_each((
    SELECT json_group_array(created_at) FROM (
        SELECT created_at FROM runs WHERE namespace = :ns AND created_at > :since
        ORDER BY created_at DESC LIMIT :rows
    )
)) WHERE key >= :burst - 1
"""
# What the refusal quotes: the window's submissions (at most RATE_ROWS) of the last minute.
LAST_MINUTE = """
SELECT count(*) AS n FROM (
    SELECT 1 FROM runs WHERE namespace = ? AND created_at > ? ORDER BY created_at DESC LIMIT ?
)
"""
# The states are TERMINAL_STATES, as a literal: the partial index runs_ended (migration 11)
# serves the query only when its WHERE implies the index's, which a parameter cannot.
ENDED_STATES = (
    "'CANCELED', 'FAILED', 'INTERNAL_ERROR', 'REJECTED', 'SKIPPED', 'SUCCEEDED', 'TIMED_OUT'"
)
MEAN_RUN = f"""
SELECT avg(updated_at - created_at) AS mean FROM runs
WHERE namespace = ? AND created_at > ? AND state IN ({ENDED_STATES})
"""  # noqa: S608 - a constant, no input
# Served by the partial index runs_queued (migration 5), whose WHERE this repeats.
QUEUED_HEADS = """
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY namespace ORDER BY id) AS position FROM runs
    WHERE state = 'QUEUED'
) WHERE position <= ? ORDER BY namespace, id
"""
# The same heads, of some namespaces only (a JSON array): what a pass can admit from.
QUEUED_HEADS_OF = """
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY namespace ORDER BY id) AS position FROM runs
    WHERE state = 'QUEUED' AND namespace IN (SELECT value FROM json_each(?))
) WHERE position <= ? ORDER BY namespace, id
"""
QUEUED_COUNTS = """
SELECT workspace, namespace, sum(n) AS n FROM run_counts WHERE state = 'QUEUED'
GROUP BY workspace, namespace HAVING sum(n) > 0
"""
# The runs that held a slot in the window [since, now]: those still active (ended_at NULL)
# and those that ended after ``since``, each one range of runs_run_time (migration 7). The
# OR of the two would make SQLite read every run the namespace ever had.
_SPANS = """
SELECT started_at, ended_at FROM runs
WHERE namespace = :ns AND started_at IS NOT NULL AND ended_at IS NULL AND started_at < :now
UNION ALL
SELECT started_at, ended_at FROM runs
WHERE namespace = :ns AND started_at IS NOT NULL AND ended_at > :since AND started_at < :now
"""
RUN_SPANS = _SPANS + "ORDER BY started_at"
RUN_SECONDS = """
SELECT coalesce(sum(min(coalesce(ended_at, :now), :now) - max(started_at, :since)), 0) AS us
FROM (
    SELECT started_at, ended_at FROM runs
    WHERE namespace = :ns AND started_at IS NOT NULL AND ended_at IS NULL AND started_at < :now
    UNION ALL
    SELECT started_at, ended_at FROM runs
    WHERE namespace = :ns AND started_at IS NOT NULL AND ended_at > :since AND started_at < :now
)
"""
ACTIVE_COUNTS = """
SELECT workspace, namespace, sum(n) AS n FROM run_counts
WHERE state IN (SELECT value FROM json_each(?)) GROUP BY workspace, namespace HAVING sum(n) > 0
"""


def usage(
    conn: sqlite3.Connection,
    namespace: str,
    workspace: str,
    at: int,
    needs: UsageNeeds = EVERY_USAGE,
) -> NamespaceUsage:
    """The namespace's usage at ``at`` (microseconds), with its workspace's active runs;
    the day's run time, the mean run time and the rate window as ``needs`` says."""
    active, queued = active_and_queued(conn, NAMESPACE_COUNTS, namespace)
    found = NamespaceUsage(
        namespace=namespace,
        active=active,
        queued=queued,
        workspace_active=(
            active_and_queued(conn, WORKSPACE_COUNTS, workspace)[0] if needs.workspace_active else 0
        ),
        mean_run_seconds=mean_run(conn, namespace, at) if needs.mean_run else None,
        mean_run_read=needs.mean_run,
        run_seconds=run_seconds(conn, namespace, at) if needs.run_hours else 0.0,
    )
    if needs.rate is not None:
        wait, last_minute = rate_verdict(conn, namespace, at, needs.rate)
        return dataclasses.replace(found, rate_wait_seconds=wait, rate_last_minute=last_minute)
    if not needs.recent:
        return found
    recent = conn.execute(RECENT, (namespace, at - RATE_WINDOW_US, RATE_ROWS)).fetchall()
    return dataclasses.replace(
        found, recent_submissions=tuple(from_us(row["created_at"]) for row in recent)
    )


def active_and_queued(conn: sqlite3.Connection, sql: str, key: str) -> tuple[int, int]:
    """The active and the queued runs among the run_counts rows ``sql`` finds for ``key``."""
    active = queued = 0
    for state, n in conn.execute(sql, (key,)):
        if state in _ACTIVE:
            active += n
        elif state == "QUEUED":
            queued += n
    return active, queued


def rate_horizon_us(rule: RateRule) -> int:
    """How far back a submission can still hold the bucket back: its rank is at most
    RATE_ROWS, so its term is negative once it is older than (RATE_ROWS + 1 - burst) / rate
    seconds (one microsecond more covers the rounding), and leaving it out changes no other
    row's rank. Never more than the rate window."""
    seconds = max(0, RATE_ROWS + 1 - rule.burst) / (rule.per_minute / 60.0)
    return min(RATE_WINDOW_US, math.ceil(seconds * 1_000_000) + 1)


def rate_verdict(
    conn: sqlite3.Connection, namespace: str, at: int, rule: RateRule
) -> tuple[float, int]:
    """``rate_wait`` over the namespace's rate window at ``at``, and when it is over the
    bucket, how many of the window's submissions came in the last minute (else 0)."""
    params = {
        "ns": namespace,
        "at": at,
        "since": at - rate_horizon_us(rule),
        "rows": RATE_ROWS,
        "burst": rule.burst,
        "rate": rule.per_minute / 60.0,
    }
    worst = conn.execute(RATE_WAIT, params).fetchone()["wait"]
    wait = max(0.0, 0.0 if worst is None else float(worst))
    if wait == 0.0:
        return wait, 0
    row = conn.execute(LAST_MINUTE, (namespace, at - _MINUTE_US, RATE_ROWS)).fetchone()
    return wait, int(row["n"])


def mean_run(conn: sqlite3.Connection, namespace: str, at: int) -> float | None:
    """How long the namespace's runs created in the day before ``at`` and ended took, on
    average, in seconds; None if none ended."""
    mean = conn.execute(MEAN_RUN, (namespace, at - _DAY_US)).fetchone()["mean"]
    return None if mean is None else float(mean) / 1_000_000


def admitted(
    conn: sqlite3.Connection,
    admit: Admit,
    new: tuple[str, str],
    at: int,
    needs: UsageNeeds,
) -> RunState | Admission:
    """``admit``'s choice for a new run of (namespace, workspace) ``new`` at ``at``, given
    what ``needs`` names; asked for the mean run time it left out, reads it and asks again
    (``admit`` is pure, so its first answer had no effect)."""
    namespace, workspace = new
    seen = usage(conn, namespace, workspace, at, needs)
    try:
        return admit(seen)
    except UsageWanted:
        if seen.mean_run_read:
            raise
    measured = mean_run(conn, namespace, at)
    return admit(dataclasses.replace(seen, mean_run_seconds=measured, mean_run_read=True))


def _window(namespace: str, at: int) -> dict[str, object]:
    return {"ns": namespace, "now": at, "since": at - _DAY_US}


def run_seconds(conn: sqlite3.Connection, namespace: str, at: int) -> float:
    """The namespace's run time within the day before ``at``, in seconds."""
    return int(conn.execute(RUN_SECONDS, _window(namespace, at)).fetchone()["us"]) / 1_000_000


def run_spans(
    conn: sqlite3.Connection, namespace: str, at: int
) -> list[tuple[datetime, datetime | None]]:
    rows = conn.execute(RUN_SPANS, _window(namespace, at)).fetchall()
    return [
        (from_us(row["started_at"]), None if row["ended_at"] is None else from_us(row["ended_at"]))
        for row in rows
    ]


def queued_heads(conn: sqlite3.Connection, per_namespace: int) -> list[RunRecord]:
    """The oldest ``per_namespace`` QUEUED runs of every namespace, by namespace then id."""
    return [decode_run(row) for row in conn.execute(QUEUED_HEADS, (per_namespace,)).fetchall()]


def queued_heads_of(
    conn: sqlite3.Connection, namespaces: Collection[str], per_namespace: int
) -> list[RunRecord]:
    rows = conn.execute(
        QUEUED_HEADS_OF, (json.dumps(sorted(set(namespaces))), per_namespace)
    ).fetchall()
    return [decode_run(row) for row in rows]


def _pairs(rows: list[sqlite3.Row]) -> dict[tuple[str, str], int]:
    return {(row["workspace"], row["namespace"]): int(row["n"]) for row in rows}


def active_counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Active runs per (workspace, namespace); pairs with none are absent."""
    rows = conn.execute(ACTIVE_COUNTS, (states_param(ACTIVE_STATES),)).fetchall()
    return {(row["workspace"], row["namespace"]): int(row["n"]) for row in rows}


class QuotaReads:
    """The admission reads of ``SqliteStore``, each one job on the store's thread."""

    async def _run(self, body: Body[T], *, write: bool) -> T:
        raise NotImplementedError  # pragma: no cover - SqliteStore provides it

    async def usage(self, namespace: str, workspace: str, now: datetime) -> NamespaceUsage:
        at = to_us(now)
        return await self._run(lambda conn: usage(conn, namespace, workspace, at), write=False)

    async def queued_heads(self, per_namespace: int) -> list[RunRecord]:
        check_limit(per_namespace)
        return await self._run(lambda conn: queued_heads(conn, per_namespace), write=False)

    async def active_counts(self) -> dict[tuple[str, str], int]:
        return await self._run(active_counts, write=False)

    async def queue_counts(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        def body(conn: sqlite3.Connection) -> tuple[dict[tuple[str, str], int], ...]:
            return _pairs(conn.execute(QUEUED_COUNTS).fetchall()), active_counts(conn)

        queued, active = await self._run(body, write=False)
        return queued, active

    async def queued_heads_of(
        self, namespaces: Collection[str], per_namespace: int
    ) -> list[RunRecord]:
        check_limit(per_namespace)
        if not namespaces:
            return []
        return await self._run(
            lambda conn: queued_heads_of(conn, namespaces, per_namespace), write=False
        )

    async def run_spans(
        self, namespace: str, now: datetime
    ) -> list[tuple[datetime, datetime | None]]:
        at = to_us(now)
        return await self._run(lambda conn: run_spans(conn, namespace, at), write=False)

    async def run_seconds(self, namespaces: Collection[str], now: datetime) -> dict[str, float]:
        at, names = to_us(now), sorted(set(namespaces))
        return await self._run(
            lambda conn: {ns: run_seconds(conn, ns, at) for ns in names}, write=False
        )
