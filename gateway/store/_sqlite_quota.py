"""The SQLite ledger's admission reads: a namespace's usage, the queue's heads, active counts.

Every function takes the connection of the transaction it is part of and runs on the store's
thread; ``usage`` runs inside ``create_run``'s write transaction, so what admission sees is
what the insert commits against.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TypeVar

from gateway.model import ACTIVE_STATES, TERMINAL_STATES, NamespaceUsage, RunRecord, RunState
from gateway.store._sqlite_connection import Body
from gateway.store._sqlite_sql import check_limit, decode_run, from_us, states_param, to_us

T = TypeVar("T")

# The rate window the ledger reads on each submission: the newest runs of the namespace
# created within RATE_WINDOW_US, at most RATE_ROWS of them. QuotaSettings bounds burst and
# submissions_per_minute so that a token bucket's verdict never needs more.
RATE_WINDOW_US = 3_600 * 1_000_000
RATE_ROWS = 1_024
_DAY_US = 86_400 * 1_000_000

COUNT_BY_STATE = """
SELECT state, count(*) AS n FROM runs
WHERE namespace = ? AND state IN (SELECT value FROM json_each(?)) GROUP BY state
"""
WORKSPACE_ACTIVE = """
SELECT count(*) AS n FROM runs WHERE workspace = ? AND state IN (SELECT value FROM json_each(?))
"""
RECENT = """
SELECT created_at FROM runs WHERE namespace = ? AND created_at > ?
ORDER BY created_at DESC LIMIT ?
"""
MEAN_RUN = """
SELECT avg(updated_at - created_at) AS mean FROM runs
WHERE namespace = ? AND created_at > ? AND state IN (SELECT value FROM json_each(?))
"""
# Served by the partial index runs_queued (migration 5), whose WHERE this repeats.
QUEUED_HEADS = """
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY namespace ORDER BY id) AS position FROM runs
    WHERE state = 'QUEUED'
) WHERE position <= ? ORDER BY namespace, id
"""
ACTIVE_COUNTS = """
SELECT workspace, namespace, count(*) AS n FROM runs
WHERE state IN (SELECT value FROM json_each(?)) GROUP BY workspace, namespace
"""


def usage(conn: sqlite3.Connection, namespace: str, workspace: str, at: int) -> NamespaceUsage:
    """The namespace's usage at ``at`` (microseconds), with its workspace's active runs."""
    rows = conn.execute(
        COUNT_BY_STATE, (namespace, states_param(ACTIVE_STATES | {RunState.QUEUED}))
    ).fetchall()
    counts = {RunState(row["state"]): int(row["n"]) for row in rows}
    on_workspace = conn.execute(WORKSPACE_ACTIVE, (workspace, states_param(ACTIVE_STATES)))
    recent = conn.execute(RECENT, (namespace, at - RATE_WINDOW_US, RATE_ROWS)).fetchall()
    mean = conn.execute(
        MEAN_RUN, (namespace, at - _DAY_US, states_param(TERMINAL_STATES))
    ).fetchone()["mean"]
    return NamespaceUsage(
        namespace=namespace,
        active=sum(n for state, n in counts.items() if state in ACTIVE_STATES),
        queued=counts.get(RunState.QUEUED, 0),
        workspace_active=int(on_workspace.fetchone()["n"]),
        recent_submissions=tuple(from_us(row["created_at"]) for row in recent),
        mean_run_seconds=None if mean is None else float(mean) / 1_000_000,
    )


def queued_heads(conn: sqlite3.Connection, per_namespace: int) -> list[RunRecord]:
    """The oldest ``per_namespace`` QUEUED runs of every namespace, by namespace then id."""
    return [decode_run(row) for row in conn.execute(QUEUED_HEADS, (per_namespace,)).fetchall()]


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
