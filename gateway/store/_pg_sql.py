"""The PostgreSQL ledger's run queries and its values: timestamptz times, jsonb documents.

Also the reads and writes that several ``PostgresStore`` methods share; each takes the
connection of the transaction it is part of.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.errors import StoreError
from gateway.model import RunRecord, RunState, Transition
from gateway.store._pg_connection import Conn, dumps
from gateway.store.base import OutboxEntry

MAX_ID = 2**63 - 1
_ALL_STATES = sorted(RunState)

INSERT_RUN = """
INSERT INTO runs (namespace, state, spec, request_fingerprint, workspace, idempotency_key,
                  databricks_host, callback_url, labels, next_poll_at, state_message,
                  created_at, updated_at, identity_ref, principal)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)
ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *
"""
UPDATE_RUN = """
UPDATE runs SET state = $1, state_message = $2, databricks_run_id = $3, databricks_host = $4,
                run_page_url = $5, next_poll_at = $6, attempts = $7, cancel_requested = $8,
                updated_at = $9
WHERE id = $10
RETURNING *
"""
LIST_RUNS = """
SELECT * FROM runs WHERE namespace = $1 AND id < $2 AND state = ANY($3::text[])
ORDER BY id DESC LIMIT $4
"""
BY_IDEMPOTENCY_KEY = "SELECT * FROM runs WHERE namespace = $1 AND idempotency_key = $2"
# Repeats the WHERE of the partial index runs_group_active, so the planner can use it.
ACTIVE_GROUP_RUNS = """
SELECT * FROM runs
WHERE namespace = $1 AND identity_ref = $2
  AND state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL
ORDER BY id DESC
"""
DUE_RUNS = """
SELECT * FROM runs WHERE next_poll_at <= $1 AND state = ANY($2::text[])
ORDER BY next_poll_at, id LIMIT $3
"""
COUNT_RUNS = "SELECT count(*) FROM runs WHERE namespace = $1 AND state = ANY($2::text[])"
COUNT_ALL_RUNS = """
SELECT namespace, state, count(*) AS n FROM runs
WHERE state = ANY($1::text[]) GROUP BY namespace, state
"""
INSERT_OUTBOX = """
INSERT INTO outbox (run_id, namespace, event_type, payload, created_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $5)
"""


def utc(moment: datetime) -> datetime:
    """A timezone-aware time in UTC; a naive one is refused, as every backend refuses it."""
    if moment.utcoffset() is None:
        raise ValueError(f"the ledger needs timezone-aware times, got naive {moment}")
    return moment.astimezone(UTC)


def maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _out(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def states_param(states: Collection[RunState] | None) -> list[str]:
    """A text[] for ``state = ANY($n)``; None means every state."""
    return [str(s) for s in _ALL_STATES] if states is None else sorted(RunState(s) for s in states)


def event_row(event: Mapping[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """The outbox row's type and document, checked before any transaction starts."""
    if event is None:
        return "", None
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError('an outbox event needs a string "type"')
    dumps(event)  # NaN and what JSON cannot hold fail here, before anything is written
    return event_type, dict(event)


def row_state(row: asyncpg.Record) -> RunState:
    try:
        return RunState(row["state"])
    except ValueError as exc:
        raise StoreError(f"run {row['id']} has an unknown state {row['state']!r}") from exc


def decode_run(row: asyncpg.Record, history: tuple[Transition, ...] = ()) -> RunRecord:
    try:
        return RunRecord(
            id=row["id"],
            namespace=row["namespace"],
            state=RunState(row["state"]),
            spec=row["spec"],
            request_fingerprint=row["request_fingerprint"],
            workspace=row["workspace"],
            created_at=row["created_at"].astimezone(UTC),
            updated_at=row["updated_at"].astimezone(UTC),
            idempotency_key=row["idempotency_key"],
            databricks_host=row["databricks_host"],
            databricks_run_id=row["databricks_run_id"],
            run_page_url=row["run_page_url"],
            state_message=row["state_message"],
            callback_url=row["callback_url"],
            labels=row["labels"],
            identity_ref=row["identity_ref"],
            principal=row["principal"],
            next_poll_at=_out(row["next_poll_at"]),
            attempts=row["attempts"],
            cancel_requested=bool(row["cancel_requested"]),
            history=history,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise StoreError(f"run {row['id']} in the ledger is malformed: {exc}") from exc


def decode_transition(row: asyncpg.Record) -> Transition:
    try:
        return Transition(
            from_state=None if row["from_state"] is None else RunState(row["from_state"]),
            to_state=RunState(row["to_state"]),
            at=row["at"].astimezone(UTC),
            message=row["message"],
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"history of run {row['run_id']} is malformed: {exc}") from exc


def decode_outbox(row: asyncpg.Record) -> OutboxEntry:
    try:
        return OutboxEntry(
            id=row["id"],
            run_id=row["run_id"],
            namespace=row["namespace"],
            event_type=row["event_type"],
            payload=row["payload"],
            created_at=row["created_at"].astimezone(UTC),
            attempts=row["attempts"],
            next_attempt_at=_out(row["next_attempt_at"]),
            delivered_at=_out(row["delivered_at"]),
            dead_at=_out(row["dead_at"]),
            last_status=row["last_status"],
            last_error=row["last_error"],
            endpoint=row["endpoint"],
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"outbox row {row['id']} is malformed: {exc}") from exc


# --- reads and writes that several Store methods share ----------------------------------------


async def runs_of(conn: Conn, sql: str, *params: Any) -> list[RunRecord]:
    return [decode_run(row) for row in await conn.fetch(sql, *params)]


async def record_transition(
    conn: Conn,
    run_id: int,
    from_state: RunState | None,
    to_state: RunState,
    at: datetime,
    message: str,
) -> None:
    await conn.execute(
        "INSERT INTO run_transitions (run_id, from_state, to_state, at, message)"
        " VALUES ($1, $2, $3, $4, $5)",
        run_id,
        None if from_state is None else str(from_state),
        str(to_state),
        at,
        message,
    )


async def run_with_history(conn: Conn, row: asyncpg.Record | None) -> RunRecord | None:
    if row is None:
        return None
    entries = await conn.fetch(
        "SELECT * FROM run_transitions WHERE run_id = $1 ORDER BY id", row["id"]
    )
    return decode_run(row, tuple(decode_transition(entry) for entry in entries))


async def maybe_history(conn: Conn, row: asyncpg.Record | None, with_history: bool) -> Any:
    return await run_with_history(conn, row) if with_history else maybe_run(row)


def maybe_run(row: asyncpg.Record | None) -> RunRecord | None:
    return None if row is None else decode_run(row)


def given(value: Any, current: Any) -> Any:
    """The new value, or the current one where the caller passed None to leave it alone."""
    return current if value is None else value


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
