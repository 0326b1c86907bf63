"""The PostgreSQL ledger's writes to existing runs: state changes, bookkeeping, due runs.

A mixin of ``PostgresStore`` (which provides ``_run``). A state change reads the run with
``FOR UPDATE``: the row stays locked until the transaction ends, so two replicas moving one
run at once are serialised and the second sees the first's state (its compare-and-set fails).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, TypeVar

from gateway import model
from gateway.model import RunRecord, RunState
from gateway.store._pg_connection import Body, Conn
from gateway.store._pg_leases import RESCHEDULE_FENCED, fenced_off
from gateway.store._pg_sql import (
    DUE_RUNS,
    INSERT_OUTBOX,
    UPDATE_RUN,
    check_limit,
    decode_run,
    event_row,
    given,
    maybe_run,
    maybe_utc,
    record_transition,
    row_state,
    runs_of,
    states_param,
    utc,
)
from gateway.store.base import Reschedule

T = TypeVar("T")

_LOCKED_RUN = "SELECT * FROM runs WHERE id = $1 FOR UPDATE"


class Transitions:
    """The writes of ``PostgresStore`` that change runs already in the ledger."""

    async def _run(
        self, body: Body[T], *, write: bool, snapshot: bool = False
    ) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

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
        # Everything that can be refused is checked before the transaction starts.
        at, poll_at = utc(now), maybe_utc(next_poll_at)
        event_type, payload = event_row(outbox_event)
        expected = frozenset(expected)

        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow(_LOCKED_RUN, run_id)
            if row is None or fenced_off(row, owner):
                return None
            if (current := row_state(row)) not in expected:
                return None
            model.transition(current, to_state)
            updated = await conn.fetchrow(
                UPDATE_RUN, str(to_state), message,
                given(databricks_run_id, row["databricks_run_id"]),
                given(databricks_host, row["databricks_host"]),
                given(run_page_url, row["run_page_url"]),
                None if to_state.terminal else given(poll_at, row["next_poll_at"]),
                row["attempts"], row["cancel_requested"], at, run_id,
            )  # fmt: skip
            assert updated is not None  # the row is locked by this transaction
            if current != to_state:
                await record_transition(conn, run_id, current, to_state, at, message)
                if payload is not None:
                    await conn.execute(
                        INSERT_OUTBOX, run_id, row["namespace"], event_type, payload, at
                    )
            return decode_run(updated)

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
        at, poll_at = maybe_utc(now), maybe_utc(next_poll_at)

        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow(_LOCKED_RUN, run_id)
            if row is None or fenced_off(row, owner):
                return None
            state = row_state(row)
            updated = await conn.fetchrow(
                UPDATE_RUN, str(state), given(state_message, row["state_message"]),
                row["databricks_run_id"], row["databricks_host"],
                given(run_page_url, row["run_page_url"]),
                None if state.terminal else given(poll_at, row["next_poll_at"]),
                given(attempts, row["attempts"]) + add_attempts, row["cancel_requested"],
                given(at, row["updated_at"]), run_id,
            )  # fmt: skip
            return maybe_run(updated)

        return await self._run(body, write=True)

    async def reschedule_runs(
        self, updates: Collection[Reschedule], *, owner: str | None = None
    ) -> int:
        rows = []
        for update in updates:
            state = update.due_state()
            rows.append(
                (utc(update.next_poll_at), update.state_message, update.run_page_url,
                 update.run_id, str(state), owner)
            )  # fmt: skip
        if not rows:
            return 0

        async def body(conn: Conn) -> int:
            # One statement per run, so the count is exact; one transaction, one commit.
            count = 0
            for row in rows:
                status = await conn.execute(RESCHEDULE_FENCED, *row)
                count += int(status.rsplit(" ", 1)[-1])
            return count

        return await self._run(body, write=True)

    async def due_runs(
        self, now: datetime, *, states: Collection[RunState], limit: int
    ) -> list[RunRecord]:
        check_limit(limit)
        at, wanted = utc(now), states_param(states)
        return await self._run(lambda conn: runs_of(conn, DUE_RUNS, at, wanted, limit), write=False)

    async def request_cancel(self, namespace: str, run_id: int, now: datetime) -> RunRecord | None:
        at = utc(now)

        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow(
                "SELECT * FROM runs WHERE id = $1 AND namespace = $2 FOR UPDATE", run_id, namespace
            )
            if row is None or row["cancel_requested"] or row_state(row).terminal:
                return maybe_run(row)
            updated = await conn.fetchrow(
                "UPDATE runs SET cancel_requested = true, next_poll_at = $1, updated_at = $1"
                " WHERE id = $2 RETURNING *",
                at,
                run_id,
            )
            return maybe_run(updated)

        return await self._run(body, write=True)
