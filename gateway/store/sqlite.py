"""The embedded ledger: SQLite in WAL mode through aiosqlite, for a single replica.

One connection, owned by the store and run in aiosqlite's thread, so no call blocks the event
loop. An asyncio lock gives each operation the connection to itself: a transaction spans
several awaits, and another coroutine's statement must not land inside it. Writes take the
database lock up front (BEGIN IMMEDIATE), so a read-modify-write never meets a concurrent
writer from another process halfway through; reads run in a deferred transaction, so the
rows and the history they return are one snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiosqlite

from gateway import model
from gateway.errors import Conflict, StoreError
from gateway.model import ACTIVE_STATES, NamespaceUsage, RunRecord, RunState
from gateway.store._sqlite_schema import configure, migrate, prepare
from gateway.store._sqlite_sql import (
    COUNT_ALL_RUNS,
    COUNT_BY_STATE,
    COUNT_RUNS,
    DUE_RUNS,
    INSERT_RUN,
    LIST_RUNS,
    MAX_ID,
    UPDATE_RUN,
    decode_outbox,
    decode_run,
    decode_transition,
    dumps,
    event_row,
    row_state,
    states_param,
    to_us,
)
from gateway.store.base import INITIAL_STATES, Admit, NewRun, OutboxEntry

# RETURNING arrived in 3.35 and json_each was built in by default from 3.38.
MIN_SQLITE = (3, 38, 0)


class SqliteStore:
    """The Store protocol on a SQLite file (``:memory:`` works too, for one process)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._installation_id: str | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    @property
    def installation_id(self) -> str:
        if self._installation_id is None:
            raise StoreError("the run ledger is not open")
        return self._installation_id

    # --- lifetime -----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lock:
            if self._conn is None:
                await self._open()

    async def _open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old: lakegate needs 3.38+")
        try:
            migrations = await asyncio.to_thread(prepare, self._path)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot prepare the run ledger at {self._path}: {exc}") from exc
        with _translated(f"opening the run ledger at {self._path}"):
            conn = await aiosqlite.connect(self._path, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                await configure(conn, self._busy_timeout_ms)
                await migrate(conn, migrations)
                row = await _one(conn, "SELECT value FROM meta WHERE key = 'installation_id'")
            except BaseException:
                await conn.close()
                raise
        if row is None:
            await conn.close()
            raise StoreError("the run ledger has no installation id")
        self._installation_id = str(row["value"])
        self._conn = conn

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            self._installation_id = None
            if conn is not None:
                with _translated("closing the run ledger"):
                    await conn.close()

    async def ping(self) -> None:
        async with self._tx(write=False) as conn:
            await _one(conn, "SELECT 1")

    # --- runs ---------------------------------------------------------------------------------

    async def create_run(
        self, new: NewRun, now: datetime, *, admit: Admit | None = None
    ) -> tuple[RunRecord, bool]:
        at, spec, labels = to_us(now), dumps(new.spec), dumps(new.labels)
        next_poll_at = None if new.next_poll_at is None else to_us(new.next_poll_at)
        async with self._tx(write=True) as conn:
            if new.idempotency_key is not None:
                found = await _one(
                    conn,
                    "SELECT * FROM runs WHERE namespace = ? AND idempotency_key = ?",
                    (new.namespace, new.idempotency_key),
                )
                if found is not None:
                    if found["request_fingerprint"] != new.request_fingerprint:
                        raise Conflict(
                            f"Idempotency-Key {new.idempotency_key!r} was already used in "
                            f"namespace {new.namespace!r} for run {found['id']} with a "
                            "different request; use a new key for a new request"
                        )
                    return decode_run(found), False
            state = new.state
            if admit is not None:
                state = admit(await _usage(conn, new.namespace))
                if state not in INITIAL_STATES:
                    raise ValueError(f"admission chose {state}; a run starts QUEUED or SUBMITTING")
            row = await _one(
                conn,
                INSERT_RUN,
                (new.namespace, state, spec, new.request_fingerprint, new.workspace,
                 new.idempotency_key, new.databricks_host, new.callback_url, labels,
                 next_poll_at, new.message, at, at,
                 json.dumps(dict(new.identity_ref), sort_keys=True)),
            )  # fmt: skip
            assert row is not None  # RETURNING always yields the inserted row
            await _record_transition(conn, row["id"], None, state, at, new.message)
        return decode_run(row), True

    async def get_run(
        self, namespace: str, run_id: int, *, with_history: bool = False
    ) -> RunRecord | None:
        async with self._tx(write=False) as conn:
            row = await _one(
                conn, "SELECT * FROM runs WHERE id = ? AND namespace = ?", (run_id, namespace)
            )
            return await _with_history(conn, row) if with_history else _maybe_run(row)

    async def get_run_by_id(self, run_id: int, *, with_history: bool = False) -> RunRecord | None:
        async with self._tx(write=False) as conn:
            row = await _one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            return await _with_history(conn, row) if with_history else _maybe_run(row)

    async def list_runs(
        self,
        namespace: str,
        *,
        states: Collection[RunState] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[RunRecord]:
        _check_limit(limit)
        below = MAX_ID if before_id is None else before_id
        async with self._tx(write=False) as conn:
            rows = await conn.execute_fetchall(
                LIST_RUNS,
                (namespace, below, states_param(states), limit),
            )
        return [decode_run(row) for row in rows]

    async def transition(
        self,
        run_id: int,
        to_state: RunState,
        *,
        expected: Collection[RunState],
        now: datetime,
        message: str = "",
        databricks_run_id: int | None = None,
        databricks_host: str | None = None,
        run_page_url: str | None = None,
        next_poll_at: datetime | None = None,
        outbox_event: Mapping[str, Any] | None = None,
    ) -> RunRecord | None:
        # Everything that can be refused is checked before the write lock is taken.
        at = to_us(now)
        poll_at = None if next_poll_at is None else to_us(next_poll_at)
        event_type, payload = event_row(outbox_event)
        async with self._tx(write=True) as conn:
            row = await _one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            if row is None or (current := row_state(row)) not in expected:
                return None
            model.transition(current, to_state)
            updated = await _one(
                conn,
                UPDATE_RUN,
                (to_state, message, _given(databricks_run_id, row["databricks_run_id"]),
                 _given(databricks_host, row["databricks_host"]),
                 _given(run_page_url, row["run_page_url"]),
                 None if to_state.terminal else _given(poll_at, row["next_poll_at"]),
                 row["attempts"], row["cancel_requested"], at, run_id),
            )  # fmt: skip
            assert updated is not None  # the row was read under the same write lock
            if current != to_state:
                await _record_transition(conn, run_id, current, to_state, at, message)
                if payload is not None:
                    await conn.execute(
                        "INSERT INTO outbox (run_id, namespace, event_type, payload, created_at,"
                        " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, row["namespace"], event_type, payload, at, at),
                    )
        return decode_run(updated)

    async def update_run(
        self,
        run_id: int,
        *,
        now: datetime | None = None,
        next_poll_at: datetime | None = None,
        attempts: int | None = None,
        add_attempts: int = 0,
        state_message: str | None = None,
        run_page_url: str | None = None,
    ) -> RunRecord | None:
        at = None if now is None else to_us(now)
        poll_at = None if next_poll_at is None else to_us(next_poll_at)
        async with self._tx(write=True) as conn:
            row = await _one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            if row is None:
                return None
            state = row_state(row)
            updated = await _one(
                conn,
                UPDATE_RUN,
                (state, _given(state_message, row["state_message"]), row["databricks_run_id"],
                 row["databricks_host"], _given(run_page_url, row["run_page_url"]),
                 None if state.terminal else _given(poll_at, row["next_poll_at"]),
                 _given(attempts, row["attempts"]) + add_attempts, row["cancel_requested"],
                 _given(at, row["updated_at"]), run_id),
            )  # fmt: skip
        return decode_run(updated) if updated is not None else None

    async def due_runs(
        self, now: datetime, *, states: Collection[RunState], limit: int
    ) -> list[RunRecord]:
        _check_limit(limit)
        async with self._tx(write=False) as conn:
            rows = await conn.execute_fetchall(
                DUE_RUNS,
                (to_us(now), states_param(states), limit),
            )
        return [decode_run(row) for row in rows]

    async def request_cancel(self, namespace: str, run_id: int, now: datetime) -> RunRecord | None:
        at = to_us(now)
        async with self._tx(write=True) as conn:
            row = await _one(
                conn, "SELECT * FROM runs WHERE id = ? AND namespace = ?", (run_id, namespace)
            )
            if row is None or row["cancel_requested"] or row_state(row).terminal:
                return _maybe_run(row)
            updated = await _one(
                conn,
                "UPDATE runs SET cancel_requested = 1, next_poll_at = ?, updated_at = ?"
                " WHERE id = ? RETURNING *",
                (at, at, run_id),
            )
        return _maybe_run(updated)

    async def count_runs(self, namespace: str, states: Collection[RunState] | None = None) -> int:
        async with self._tx(write=False) as conn:
            row = await _one(
                conn,
                COUNT_RUNS,
                (namespace, states_param(states)),
            )
        return int(row["n"]) if row is not None else 0

    async def counts_by_namespace_state(
        self, states: Collection[RunState] | None = None
    ) -> dict[tuple[str, RunState], int]:
        async with self._tx(write=False) as conn:
            rows = await conn.execute_fetchall(
                COUNT_ALL_RUNS,
                (states_param(states),),
            )
        return {(row["namespace"], RunState(row["state"])): int(row["n"]) for row in rows}

    async def list_outbox(
        self, *, run_id: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        _check_limit(limit)
        async with self._tx(write=False) as conn:
            rows = await conn.execute_fetchall(
                "SELECT * FROM outbox WHERE ? IS NULL OR run_id = ? ORDER BY id LIMIT ?",
                (run_id, run_id, limit),
            )
        return [decode_outbox(row) for row in rows]

    # --- plumbing -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _tx(self, *, write: bool) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError("the run ledger is not open")
            with _translated("using the run ledger"):
                if conn.in_transaction:
                    # Left open by a rollback that failed; none of it was committed.
                    await conn.rollback()
                # Everything is inside the try: aiosqlite runs a statement even when its caller
                # is cancelled while waiting, and the rollback queued behind it must undo it.
                try:
                    await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    yield conn
                    await conn.commit()
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        await conn.rollback()
                    raise


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    """The one place where sqlite's exceptions become ours."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{doing}: {type(exc).__name__}: {exc}") from exc


async def _one(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()
) -> sqlite3.Row | None:
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[0] if rows else None


async def _usage(conn: aiosqlite.Connection, namespace: str) -> NamespaceUsage:
    rows = await conn.execute_fetchall(
        COUNT_BY_STATE,
        (namespace, states_param(ACTIVE_STATES | {RunState.QUEUED})),
    )
    counts = {RunState(row["state"]): int(row["n"]) for row in rows}
    return NamespaceUsage(
        namespace=namespace,
        active=sum(n for state, n in counts.items() if state in ACTIVE_STATES),
        queued=counts.get(RunState.QUEUED, 0),
    )


async def _record_transition(
    conn: aiosqlite.Connection,
    run_id: int,
    from_state: RunState | None,
    to_state: RunState,
    at: int,
    message: str,
) -> None:
    await conn.execute(
        "INSERT INTO run_transitions (run_id, from_state, to_state, at, message)"
        " VALUES (?, ?, ?, ?, ?)",
        (run_id, from_state, to_state, at, message),
    )


async def _with_history(conn: aiosqlite.Connection, row: sqlite3.Row | None) -> RunRecord | None:
    if row is None:
        return None
    entries = await conn.execute_fetchall(
        "SELECT * FROM run_transitions WHERE run_id = ? ORDER BY id", (row["id"],)
    )
    return decode_run(row, tuple(decode_transition(entry) for entry in entries))


def _maybe_run(row: sqlite3.Row | None) -> RunRecord | None:
    return None if row is None else decode_run(row)


def _given(value: Any, current: Any) -> Any:
    """The new value, or the current one where the caller passed None to leave it alone."""
    return current if value is None else value


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
