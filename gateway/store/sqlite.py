"""The embedded ledger: SQLite in WAL mode, for a single replica.

One ``sqlite3`` connection lives on the store's own thread and never leaves it, so no call
blocks the event loop. Every Store method is one job on that thread, handed over from the loop
and answered back; the thread takes whatever jobs wait at once and runs them one after the
other, so transactions never interleave and no lock is needed on the loop's side. The writes
of one batch share one transaction and one COMMIT (one fsync), each inside a savepoint of its
own, so each stays all-or-nothing for its caller (``_sqlite_worker``). A caller cancelled
while it waits leaves its operation either never started or finished whole, never half done.

Writes take the database lock up front (BEGIN IMMEDIATE), so a read-modify-write never meets
a concurrent writer from another process halfway through; reads run in a deferred
transaction (shared by the reads of a batch), so the rows and the history they return are one
snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from gateway import model
from gateway.errors import Conflict
from gateway.model import RunRecord, RunState
from gateway.store._sqlite_connection import SqliteLifetime
from gateway.store._sqlite_health import SqliteHealth
from gateway.store._sqlite_leases import SqliteLeases, fenced_off
from gateway.store._sqlite_outbox import SqliteOutbox
from gateway.store._sqlite_quota import QuotaReads, admitted
from gateway.store._sqlite_sql import (
    ACTIVE_GROUP_RUNS,
    BY_IDEMPOTENCY_KEY,
    BY_REMOTE_ID,
    COUNT_ALL_RUNS,
    COUNT_RUNS,
    DUE_RUNS,
    LIST_RUNS,
    MAX_ID,
    check_limit,
    decode_outbox,
    decode_run,
    dumps,
    event_row,
    given,
    identity_ref_text,
    insert_run,
    maybe_run,
    one,
    record_transition,
    row_state,
    run_with_history,
    runs_of,
    states_param,
    to_us,
    update_run,
)
from gateway.store.base import (
    EVERY_USAGE,
    INITIAL_STATES,
    Admission,
    Admit,
    NewRun,
    OutboxEntry,
    UsageNeeds,
)


class SqliteStore(SqliteLifetime, QuotaReads, SqliteOutbox, SqliteLeases, SqliteHealth):
    """The Store protocol on a SQLite file (``:memory:`` works too, for one process)."""

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    # --- runs ---------------------------------------------------------------------------------

    async def create_run(
        self,
        new: NewRun,
        now: datetime,
        *,
        admit: Admit | None = None,
        needs: UsageNeeds = EVERY_USAGE,
    ) -> tuple[RunRecord, bool]:
        at, spec, labels = to_us(now), dumps(new.spec), dumps(new.labels)
        # A spec is a JSON object decoded from a request (NewRun's contract), which reads back
        # from its text as itself.
        written = new.spec if type(new.spec) is dict else None
        next_poll_at = None if new.next_poll_at is None else to_us(new.next_poll_at)
        identity_ref = identity_ref_text(new.identity_ref)

        def body(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            if new.idempotency_key is not None:
                found = one(conn, BY_IDEMPOTENCY_KEY, (new.namespace, new.idempotency_key))
                if found is not None:
                    if found["request_fingerprint"] != new.request_fingerprint:
                        raise Conflict(
                            f"Idempotency-Key {new.idempotency_key!r} was already used in "
                            f"namespace {new.namespace!r} for run {found['id']} with a "
                            "different request; use a new key for a new request"
                        )
                    return decode_run(found), False
            state, message = new.state, new.message
            if admit is not None:
                choice = admitted(conn, admit, (new.namespace, new.workspace), at, needs)
                if isinstance(choice, Admission):
                    state, message = choice.state, choice.message
                else:
                    state = choice
                if state not in INITIAL_STATES:
                    raise ValueError(f"admission chose {state}; a run starts QUEUED or SUBMITTING")
            # The spec just written is the one the row holds: the submission reads it next.
            run = insert_run(
                conn,
                (new.namespace, state, spec, new.request_fingerprint, new.workspace,
                 new.idempotency_key, new.databricks_host, new.callback_url, labels,
                 next_poll_at, message, at, at, identity_ref, dumps(new.principal)),
                written,
            )  # fmt: skip
            record_transition(conn, run.id, None, state, at, message)
            return run, True

        return await self._run(body, write=True)

    async def get_run(
        self, namespace: str, run_id: int, *, with_history: bool = False
    ) -> RunRecord | None:
        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(
                conn, "SELECT * FROM runs WHERE id = ? AND namespace = ?", (run_id, namespace)
            )
            return run_with_history(conn, row) if with_history else maybe_run(row)

        return await self._run(body, write=False)

    async def get_run_by_id(self, run_id: int, *, with_history: bool = False) -> RunRecord | None:
        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            return run_with_history(conn, row) if with_history else maybe_run(row)

        return await self._run(body, write=False)

    async def get_run_by_remote_id(
        self, namespace: str, databricks_run_id: int
    ) -> RunRecord | None:
        def body(conn: sqlite3.Connection) -> RunRecord | None:
            return maybe_run(one(conn, BY_REMOTE_ID, (namespace, databricks_run_id)))

        return await self._run(body, write=False)

    async def get_run_by_idempotency_key(self, namespace: str, key: str) -> RunRecord | None:
        def body(conn: sqlite3.Connection) -> RunRecord | None:
            return maybe_run(one(conn, BY_IDEMPOTENCY_KEY, (namespace, key)))

        return await self._run(body, write=False)

    async def active_runs_of_group(
        self, namespace: str, identity_ref: Mapping[str, str]
    ) -> list[RunRecord]:
        params = (namespace, identity_ref_text(identity_ref))
        return await self._run(lambda conn: runs_of(conn, ACTIVE_GROUP_RUNS, params), write=False)

    async def list_runs(
        self,
        namespace: str,
        *,
        states: Collection[RunState] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[RunRecord]:
        check_limit(limit)
        params = (
            namespace,
            MAX_ID if before_id is None else before_id,
            states_param(states),
            limit,
        )
        return await self._run(lambda conn: runs_of(conn, LIST_RUNS, params), write=False)

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
        owner: str | None = None,
    ) -> RunRecord | None:
        # Everything that can be refused is checked before the job is queued.
        at = to_us(now)
        poll_at = None if next_poll_at is None else to_us(next_poll_at)
        event_type, payload = event_row(outbox_event)
        expected = frozenset(expected)

        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            if row is None or fenced_off(row, owner):
                return None
            if (current := row_state(row)) not in expected:
                return None
            model.transition(current, to_state)
            updated = update_run(
                conn,
                row,
                (to_state, message, given(databricks_run_id, row["databricks_run_id"]),
                 given(databricks_host, row["databricks_host"]),
                 given(run_page_url, row["run_page_url"]),
                 None if to_state.terminal else given(poll_at, row["next_poll_at"]),
                 row["attempts"], row["cancel_requested"], at),
            )  # fmt: skip
            if current != to_state:
                record_transition(conn, run_id, current, to_state, at, message)
                if payload is not None:
                    conn.execute(
                        "INSERT INTO outbox (run_id, namespace, event_type, payload, created_at,"
                        " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, row["namespace"], event_type, payload, at, at),
                    )
            return updated

        return await self._run(body, write=True)

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
        owner: str | None = None,
    ) -> RunRecord | None:
        at = None if now is None else to_us(now)
        poll_at = None if next_poll_at is None else to_us(next_poll_at)

        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
            if row is None or fenced_off(row, owner):
                return None
            state = row_state(row)
            return update_run(
                conn,
                row,
                (state, given(state_message, row["state_message"]), row["databricks_run_id"],
                 row["databricks_host"], given(run_page_url, row["run_page_url"]),
                 None if state.terminal else given(poll_at, row["next_poll_at"]),
                 given(attempts, row["attempts"]) + add_attempts, row["cancel_requested"],
                 given(at, row["updated_at"])),
            )  # fmt: skip

        return await self._run(body, write=True)

    async def due_runs(
        self, now: datetime, *, states: Collection[RunState], limit: int
    ) -> list[RunRecord]:
        check_limit(limit)
        params = (to_us(now), states_param(states), limit)
        return await self._run(lambda conn: runs_of(conn, DUE_RUNS, params), write=False)

    async def request_cancel(self, namespace: str, run_id: int, now: datetime) -> RunRecord | None:
        at = to_us(now)

        def body(conn: sqlite3.Connection) -> RunRecord | None:
            row = one(
                conn, "SELECT * FROM runs WHERE id = ? AND namespace = ?", (run_id, namespace)
            )
            if row is None or row["cancel_requested"] or row_state(row).terminal:
                return maybe_run(row)
            updated = one(
                conn,
                "UPDATE runs SET cancel_requested = 1, next_poll_at = ?, updated_at = ?"
                " WHERE id = ? RETURNING *",
                (at, at, run_id),
            )
            return maybe_run(updated)

        return await self._run(body, write=True)

    async def count_runs(self, namespace: str, states: Collection[RunState] | None = None) -> int:
        params = (namespace, states_param(states))

        def body(conn: sqlite3.Connection) -> int:
            row = one(conn, COUNT_RUNS, params)
            return int(row["n"]) if row is not None else 0

        return await self._run(body, write=False)

    async def counts_by_namespace_state(
        self, states: Collection[RunState] | None = None
    ) -> dict[tuple[str, RunState], int]:
        params = (states_param(states),)

        def body(conn: sqlite3.Connection) -> dict[tuple[str, RunState], int]:
            rows = conn.execute(COUNT_ALL_RUNS, params).fetchall()
            return {(row["namespace"], RunState(row["state"])): int(row["n"]) for row in rows}

        return await self._run(body, write=False)

    async def list_outbox(
        self, *, run_id: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        check_limit(limit)

        def body(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(
                "SELECT * FROM outbox WHERE ? IS NULL OR run_id = ? ORDER BY id LIMIT ?",
                (run_id, run_id, limit),
            ).fetchall()
            return [decode_outbox(row) for row in rows]

        return await self._run(body, write=False)
