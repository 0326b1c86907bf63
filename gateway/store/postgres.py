"""The shared ledger: PostgreSQL through an asyncpg pool, for one replica or several.

Every Store method is one transaction on one pooled connection (``_pg_connection``). What
SQLite gets from having one writer, this backend gets from locks: ``create_run`` takes
transaction-scoped advisory locks on its namespace and, when it admits, on its workspace, so
the quota decision and the idempotency check see every run any replica committed before;
state changes lock the run's row (``FOR UPDATE``) for their compare-and-set; outbox claims
skip rows another replica holds (``FOR UPDATE SKIP LOCKED``) and lease what they take.

The queries of each concern live in their own module (runs and transitions here and in
``_pg_transitions``, quota reads in ``_pg_quota``, the outbox in ``_pg_outbox``, readiness in
``_pg_health``), so further queries (leases on due runs) sit beside those they touch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TypeVar

import asyncpg

from gateway.errors import Conflict, StoreError
from gateway.model import RunRecord, RunState
from gateway.store._pg_connection import (
    Body,
    Conn,
    PoolSettings,
    create_pool,
    dumps,
    in_transaction,
    translated,
)
from gateway.store._pg_health import PostgresHealth
from gateway.store._pg_leases import PostgresLeases
from gateway.store._pg_locks import LOCK, NAMESPACE_LOCK, WORKSPACE_LOCK
from gateway.store._pg_outbox import PostgresOutbox
from gateway.store._pg_quota import QuotaReads, admitted
from gateway.store._pg_schema import installation_id, migrate
from gateway.store._pg_sql import (
    ACTIVE_GROUP_RUNS,
    BY_IDEMPOTENCY_KEY,
    COUNT_ALL_RUNS,
    COUNT_RUNS,
    INSERT_RUN,
    LIST_RUNS,
    MAX_ID,
    check_limit,
    decode_outbox,
    decode_run,
    maybe_history,
    maybe_run,
    record_transition,
    runs_of,
    states_param,
    utc,
)
from gateway.store._pg_transitions import Transitions
from gateway.store.base import (
    EVERY_USAGE,
    INITIAL_STATES,
    Admission,
    Admit,
    NewRun,
    OutboxEntry,
    UsageNeeds,
)
from gateway.store.errors import StoreUnavailable
from gateway.store.migrate import load_migrations

__all__ = ["PoolSettings", "PostgresStore"]

T = TypeVar("T")


class PostgresStore(Transitions, QuotaReads, PostgresOutbox, PostgresLeases, PostgresHealth):
    """The Store protocol on a PostgreSQL database (its schema is the DSN's search_path)."""

    def __init__(self, settings: PoolSettings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._installation_id: str | None = None
        self._lifetime = asyncio.Lock()
        # Each write is a transaction of its own here: as many commits as writes.
        self._commits = 0

    def __repr__(self) -> str:
        # Never the DSN: it may hold a password.
        return "PostgresStore()"

    @property
    def installation_id(self) -> str:
        if self._installation_id is None:
            raise StoreError("the run ledger is not open")
        return self._installation_id

    @property
    def commits(self) -> tuple[int, int]:
        return (0, 0) if self._pool is None else (self._commits, self._commits)

    # --- lifetime -----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lifetime:
            if self._pool is not None:
                return
            try:
                migrations = await asyncio.to_thread(load_migrations, "postgres")
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read the PostgreSQL migrations: {exc}") from exc
            pool = await create_pool(self._settings)
            try:
                with translated("migrating the PostgreSQL ledger"):
                    async with pool.acquire(timeout=self._settings.connect_timeout) as conn:
                        await migrate(conn, migrations)
                        found = await installation_id(conn)
            except BaseException:
                await asyncio.shield(pool.close())
                raise
            self._pool, self._installation_id, self._commits = pool, found, 0

    async def close(self) -> None:
        async with self._lifetime:
            pool, self._pool, self._installation_id = self._pool, None, None
            if pool is None:
                return
            try:
                # Waits for connections in use to come back; shielded, so a cancelled close()
                # still closes the pool.
                await asyncio.shield(asyncio.wait_for(pool.close(), self._settings.command_timeout))
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    # --- runs ---------------------------------------------------------------------------------

    async def create_run(
        self,
        new: NewRun,
        now: datetime,
        *,
        admit: Admit | None = None,
        needs: UsageNeeds = EVERY_USAGE,
    ) -> tuple[RunRecord, bool]:
        at = utc(now)
        poll_at = None if new.next_poll_at is None else utc(new.next_poll_at)
        for document in (new.spec, new.labels, new.identity_ref, new.principal):
            dumps(document)  # NaN and what JSON cannot hold fail here, before any transaction
        params = (
            new.request_fingerprint, new.workspace, new.idempotency_key, new.databricks_host,
            new.callback_url, dict(new.labels), poll_at,
        )  # fmt: skip

        async def body(conn: Conn) -> tuple[RunRecord, bool]:
            # Serialises the namespace's submissions across replicas: the replay check and the
            # admission below see every run committed before, and nothing commits in between.
            await conn.execute(LOCK, NAMESPACE_LOCK, new.namespace)
            if admit is not None:
                # The workspace cap spans namespaces; taken second, always, so no deadlock.
                await conn.execute(LOCK, WORKSPACE_LOCK, new.workspace)
            if new.idempotency_key is not None:
                found = await conn.fetchrow(BY_IDEMPOTENCY_KEY, new.namespace, new.idempotency_key)
                if found is not None:
                    return _replay(found, new), False
            state, message = new.state, new.message
            if admit is not None:
                choice = await admitted(conn, admit, (new.namespace, new.workspace), at, needs)
                if isinstance(choice, Admission):
                    state, message = choice.state, choice.message
                else:
                    state = choice
                if state not in INITIAL_STATES:
                    raise ValueError(f"admission chose {state}; a run starts QUEUED or SUBMITTING")
            row = await conn.fetchrow(
                INSERT_RUN, new.namespace, str(state), dict(new.spec), *params, message, at,
                dict(new.identity_ref), dict(new.principal),
            )  # fmt: skip
            if row is None:
                # The key's run was committed meanwhile by a writer that took no lock.
                found = await conn.fetchrow(BY_IDEMPOTENCY_KEY, new.namespace, new.idempotency_key)
                assert found is not None  # ON CONFLICT skipped the insert for this very row
                return _replay(found, new), False
            await record_transition(conn, row["id"], None, state, at, message)
            return decode_run(row), True

        return await self._run(body, write=True)

    async def get_run(
        self, namespace: str, run_id: int, *, with_history: bool = False
    ) -> RunRecord | None:
        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow(
                "SELECT * FROM runs WHERE id = $1 AND namespace = $2", run_id, namespace
            )
            result: RunRecord | None = await maybe_history(conn, row, with_history)
            return result

        return await self._run(body, write=False, snapshot=with_history)

    async def get_run_by_id(self, run_id: int, *, with_history: bool = False) -> RunRecord | None:
        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
            result: RunRecord | None = await maybe_history(conn, row, with_history)
            return result

        return await self._run(body, write=False, snapshot=with_history)

    async def get_run_by_remote_id(
        self, namespace: str, databricks_run_id: int
    ) -> RunRecord | None:
        async def body(conn: Conn) -> RunRecord | None:
            row = await conn.fetchrow(
                "SELECT * FROM runs WHERE namespace = $1 AND databricks_run_id = $2"
                " ORDER BY id LIMIT 1",
                namespace,
                databricks_run_id,
            )
            return maybe_run(row)

        return await self._run(body, write=False)

    async def get_run_by_idempotency_key(self, namespace: str, key: str) -> RunRecord | None:
        async def body(conn: Conn) -> RunRecord | None:
            return maybe_run(await conn.fetchrow(BY_IDEMPOTENCY_KEY, namespace, key))

        return await self._run(body, write=False)

    async def active_runs_of_group(
        self, namespace: str, identity_ref: Mapping[str, str]
    ) -> list[RunRecord]:
        ref = dict(identity_ref)
        return await self._run(
            lambda conn: runs_of(conn, ACTIVE_GROUP_RUNS, namespace, ref), write=False
        )

    async def list_runs(
        self,
        namespace: str,
        *,
        states: Collection[RunState] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[RunRecord]:
        check_limit(limit)
        below = MAX_ID if before_id is None else before_id
        wanted = states_param(states)
        return await self._run(
            lambda conn: runs_of(conn, LIST_RUNS, namespace, below, wanted, limit), write=False
        )

    async def count_runs(self, namespace: str, states: Collection[RunState] | None = None) -> int:
        wanted = states_param(states)

        async def body(conn: Conn) -> int:
            return int(await conn.fetchval(COUNT_RUNS, namespace, wanted))

        return await self._run(body, write=False)

    async def counts_by_namespace_state(
        self, states: Collection[RunState] | None = None
    ) -> dict[tuple[str, RunState], int]:
        wanted = states_param(states)

        async def body(conn: Conn) -> dict[tuple[str, RunState], int]:
            rows = await conn.fetch(COUNT_ALL_RUNS, wanted)
            return {(row["namespace"], RunState(row["state"])): int(row["n"]) for row in rows}

        return await self._run(body, write=False)

    async def list_outbox(
        self, *, run_id: int | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        check_limit(limit)

        async def body(conn: Conn) -> list[OutboxEntry]:
            rows = await conn.fetch(
                "SELECT * FROM outbox WHERE $1::bigint IS NULL OR run_id = $1 ORDER BY id LIMIT $2",
                run_id,
                limit,
            )
            return [decode_outbox(row) for row in rows]

        return await self._run(body, write=False)

    # --- plumbing -----------------------------------------------------------------------------

    async def _run(self, body: Body[T], *, write: bool, snapshot: bool = False) -> T:
        """Run ``body`` on a pooled connection (a read of several statements: ``snapshot``)."""
        pool = self._pool
        if pool is None:
            raise StoreError("the run ledger is not open")
        wait = self._settings.connect_timeout
        try:
            result = await in_transaction(pool, wait, body, write=write, snapshot=snapshot)
        except StoreUnavailable:
            if write:
                # A write whose link broke may have committed: only its caller can tell.
                raise
            # A read is safe to repeat, and the pool has dropped the broken connection.
            return await in_transaction(pool, wait, body, write=write, snapshot=snapshot)
        if write:
            self._commits += 1
        return result


def _replay(found: asyncpg.Record, new: NewRun) -> RunRecord:
    if found["request_fingerprint"] != new.request_fingerprint:
        raise Conflict(
            f"Idempotency-Key {new.idempotency_key!r} was already used in "
            f"namespace {new.namespace!r} for run {found['id']} with a "
            "different request; use a new key for a new request"
        )
    return decode_run(found)
