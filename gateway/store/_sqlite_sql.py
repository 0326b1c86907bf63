"""The SQLite ledger's queries and its values: times as integer microseconds, JSON as text.

Also the reads and writes that several ``SqliteStore`` methods share; all of them take the
connection of the transaction they are part of, and run on the store's thread.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import jsonexact
from gateway.errors import StoreError
from gateway.model import RunRecord, RunState, Transition
from gateway.store._lazy_json import LazyObject
from gateway.store.base import OutboxEntry

MAX_ID = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ALL_STATES = json.dumps(sorted(RunState))


# The columns INSERT_RUN writes, in its order, before started_at (a test holds the two to one
# order). The new run is these values with the schema's defaults for the rest
# (_INSERT_DEFAULTS), built in Python, not read back with RETURNING *: that took a third of
# each statement's time (9-10 µs of 26), and UPDATE_RUN's the same.
INSERTED_COLUMNS = (
    "namespace", "state", "spec", "request_fingerprint", "workspace", "idempotency_key",
    "databricks_host", "callback_url", "labels", "next_poll_at", "state_message",
    "created_at", "updated_at", "identity_ref", "principal",
)  # fmt: skip
_INSERT_DEFAULTS = {
    "databricks_run_id": None, "run_page_url": None, "attempts": 0, "cancel_requested": 0,
}  # fmt: skip
# started_at is the history's to keep (the runs_started trigger), but a run born SUBMITTING
# starts at its insert: setting it here leaves the trigger nothing to write, which saved a
# second write of the new row (and of the run-time index) on every accepted submit.
INSERT_RUN = """
INSERT INTO runs (namespace, state, spec, request_fingerprint, workspace, idempotency_key,
                  databricks_host, callback_url, labels, next_poll_at, state_message,
                  created_at, updated_at, identity_ref, principal, started_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? = 'SUBMITTING' THEN ? END)
"""
# The columns UPDATE_RUN sets, in its order (held by the same test); the run's id comes last.
UPDATED_COLUMNS = (
    "state", "state_message", "databricks_run_id", "databricks_host", "run_page_url",
    "next_poll_at", "attempts", "cancel_requested", "updated_at",
)  # fmt: skip
UPDATE_RUN = """
UPDATE runs SET state = ?, state_message = ?, databricks_run_id = ?, databricks_host = ?,
                run_page_url = ?, next_poll_at = ?, attempts = ?, cancel_requested = ?,
                updated_at = ?
WHERE id = ?
"""
# A state filter is one JSON array parameter, so no query is ever assembled from strings.
LIST_RUNS = """
SELECT * FROM runs WHERE namespace = ? AND id < ? AND state IN (SELECT value FROM json_each(?))
ORDER BY id DESC LIMIT ?
"""
BY_IDEMPOTENCY_KEY = "SELECT * FROM runs WHERE namespace = ? AND idempotency_key = ?"
BY_REMOTE_ID = "SELECT * FROM runs WHERE namespace = ? AND databricks_run_id = ?"
# Served by the partial index runs_group_active (migration 4), whose WHERE this repeats word
# for word; the states are REMOTE_ACTIVE_STATES, spelt out because an index cannot take them
# as a parameter.
ACTIVE_GROUP_RUNS = """
SELECT * FROM runs
WHERE namespace = ? AND identity_ref = ?
  AND state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL
ORDER BY id DESC
"""
DUE_RUNS = """
SELECT * FROM runs WHERE next_poll_at <= ? AND state IN (SELECT value FROM json_each(?))
ORDER BY next_poll_at, id LIMIT ?
"""
# From run_counts (migration 12), kept by triggers: a few rows, not a read of every run.
COUNT_RUNS = """
SELECT coalesce(sum(n), 0) AS n FROM run_counts
WHERE namespace = ? AND state IN (SELECT value FROM json_each(?))
"""
COUNT_ALL_RUNS = """
SELECT namespace, state, sum(n) AS n FROM run_counts
WHERE state IN (SELECT value FROM json_each(?)) GROUP BY namespace, state HAVING sum(n) > 0
"""


def to_us(moment: datetime) -> int:
    """Integer microseconds since the epoch: exact, and ordered the way SQL compares numbers."""
    if moment.utcoffset() is None:
        raise ValueError(f"the ledger needs timezone-aware times, got naive {moment}")
    return (moment - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def _maybe_time(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def dumps(value: Any) -> str:
    """Compact JSON; NaN and non-JSON values raise here, before any transaction starts."""
    return jsonexact.dumps(value)


def identity_ref_text(ref: Mapping[str, str]) -> str:
    """A run's identity choice as stored: one text per choice, so a group is an equality."""
    return json.dumps(dict(ref), sort_keys=True)


def states_param(states: Collection[RunState] | None) -> str:
    """A JSON array for ``state IN (SELECT value FROM json_each(?))``; None means every state."""
    if states is None:
        return _ALL_STATES
    return _states_text(frozenset(RunState(s) for s in states))


@functools.lru_cache(maxsize=64)
def _states_text(states: frozenset[RunState]) -> str:
    # The same few sets (active, terminal, not ended) on every admission and poll.
    return json.dumps(sorted(states))


def event_row(event: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """The outbox row's type and JSON, checked before any transaction starts."""
    if event is None:
        return "", None
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError('an outbox event needs a string "type"')
    return event_type, dumps(event)


def row_state(row: sqlite3.Row) -> RunState:
    try:
        return RunState(row["state"])
    except ValueError as exc:
        raise StoreError(f"run {row['id']} has an unknown state {row['state']!r}") from exc


def decode_run(
    row: sqlite3.Row | Mapping[str, Any],
    history: tuple[Transition, ...] = (),
    spec: dict[str, Any] | None = None,
) -> RunRecord:
    """The run in ``row``; ``spec`` is its decoded spec when the caller has it already."""
    try:
        return RunRecord(
            id=row["id"],
            namespace=row["namespace"],
            state=RunState(row["state"]),
            # Decoded when read: most readers of a run never look at its spec.
            spec=LazyObject(row["spec"], row["id"], spec),
            request_fingerprint=row["request_fingerprint"],
            workspace=row["workspace"],
            created_at=from_us(row["created_at"]),
            updated_at=from_us(row["updated_at"]),
            idempotency_key=row["idempotency_key"],
            databricks_host=row["databricks_host"],
            databricks_run_id=row["databricks_run_id"],
            run_page_url=row["run_page_url"],
            state_message=row["state_message"],
            callback_url=row["callback_url"],
            labels=jsonexact.loads(row["labels"]),
            identity_ref=jsonexact.loads(row["identity_ref"]),
            principal=jsonexact.loads(row["principal"]),
            next_poll_at=_maybe_time(row["next_poll_at"]),
            attempts=row["attempts"],
            cancel_requested=bool(row["cancel_requested"]),
            history=history,
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"run {row['id']} in the ledger is malformed: {exc}") from exc


def decode_transition(row: sqlite3.Row) -> Transition:
    try:
        return Transition(
            from_state=None if row["from_state"] is None else RunState(row["from_state"]),
            to_state=RunState(row["to_state"]),
            at=from_us(row["at"]),
            message=row["message"],
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"history of run {row['run_id']} is malformed: {exc}") from exc


def decode_outbox(row: sqlite3.Row) -> OutboxEntry:
    try:
        return OutboxEntry(
            id=row["id"],
            run_id=row["run_id"],
            namespace=row["namespace"],
            event_type=row["event_type"],
            payload=jsonexact.loads(row["payload"]),
            created_at=from_us(row["created_at"]),
            attempts=row["attempts"],
            next_attempt_at=_maybe_time(row["next_attempt_at"]),
            delivered_at=_maybe_time(row["delivered_at"]),
            dead_at=_maybe_time(row["dead_at"]),
            last_status=row["last_status"],
            last_error=row["last_error"],
            endpoint=row["endpoint"],
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"outbox row {row['id']} is malformed: {exc}") from exc


# --- reads and writes that several Store methods share ----------------------------------------


@contextlib.contextmanager
def atomic(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """One transaction around the block: COMMIT when it ends, ROLLBACK when anything escapes.

    Statements run one by one inside it (never ``executescript``, which commits first), so a
    failure leaves nothing half-written; a failed ROLLBACK is left for the next BEGIN to see.
    """
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
    # fetchall, not fetchone: a RETURNING statement is only finished once its rows are read.
    rows: list[sqlite3.Row] = conn.execute(sql, params).fetchall()
    return rows[0] if rows else None


def runs_of(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[RunRecord]:
    return [decode_run(row) for row in conn.execute(sql, params).fetchall()]


def record_transition(
    conn: sqlite3.Connection,
    run_id: int,
    from_state: RunState | None,
    to_state: RunState,
    at: int,
    message: str,
) -> None:
    conn.execute(
        "INSERT INTO run_transitions (run_id, from_state, to_state, at, message)"
        " VALUES (?, ?, ?, ?, ?)",
        (run_id, from_state, to_state, at, message),
    )


def run_with_history(conn: sqlite3.Connection, row: sqlite3.Row | None) -> RunRecord | None:
    if row is None:
        return None
    entries = conn.execute(
        "SELECT * FROM run_transitions WHERE run_id = ? ORDER BY id", (row["id"],)
    ).fetchall()
    return decode_run(row, tuple(decode_transition(entry) for entry in entries))


def insert_run(
    conn: sqlite3.Connection, values: tuple[Any, ...], spec: dict[str, Any] | None
) -> RunRecord:
    """INSERT_RUN with ``values`` (INSERTED_COLUMNS' values), and the new run; ``spec`` is
    the decoded spec when the caller has it."""
    row: dict[str, Any] = dict(zip(INSERTED_COLUMNS, values, strict=True))
    cursor = conn.execute(INSERT_RUN, (*values, row["state"], row["created_at"]))
    row.update(_INSERT_DEFAULTS, id=cursor.lastrowid)
    return decode_run(row, spec=spec)


def update_run(conn: sqlite3.Connection, row: sqlite3.Row, values: tuple[Any, ...]) -> RunRecord:
    """UPDATE_RUN with ``values`` (UPDATED_COLUMNS' values) on ``row``'s run, and the run as
    it now stands: ``row``, read under the same write lock, with what was set."""
    conn.execute(UPDATE_RUN, (*values, row["id"]))
    now = dict(zip(row.keys(), row, strict=True))
    now.update(zip(UPDATED_COLUMNS, values, strict=True))
    return decode_run(now)


def maybe_run(row: sqlite3.Row | None) -> RunRecord | None:
    return None if row is None else decode_run(row)


def given(value: Any, current: Any) -> Any:
    """The new value, or the current one where the caller passed None to leave it alone."""
    return current if value is None else value


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
