"""What only the SQLite backend promises: its file, its schema, and its failure modes."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.model import REMOTE_ACTIVE_STATES, RunState
from gateway.store._sqlite_schema import split_statements
from gateway.store._sqlite_sql import ACTIVE_GROUP_RUNS
from gateway.store.sqlite import SqliteStore
from tests.store.factories import NOW, at, new_run

S = RunState


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "er" / "lakegate.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path)
    await store.open()
    yield store
    await store.close()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the ledger file directly, as an operator with the sqlite3 shell would."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def execute(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(sql)


async def test_ledger_file_is_in_wal_mode_in_a_created_directory(
    store: SqliteStore, path: Path
) -> None:
    """open() creates the missing directories and leaves the file in WAL journal mode."""
    assert await asyncio.to_thread(path.is_file)
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


async def test_each_migration_is_recorded_once(store: SqliteStore, path: Path) -> None:
    """schema_migrations lists every migration once, however often the ledger is opened."""
    await store.close()
    await store.open()
    assert query(path, "SELECT version, name FROM schema_migrations") == [
        (1, "ledger"),
        (2, "identity_ref"),
        (3, "remote_id"),
        (4, "active_group"),
        (5, "admission"),
        (6, "webhook_delivery"),
        (7, "principal"),
        (8, "run_hours"),
        (9, "leases"),
        (10, "outbox_owner"),
        (11, "runs_ended"),
        (12, "run_counts"),
        (13, "unread_indexes"),
    ]


async def test_the_group_query_reads_its_own_index(store: SqliteStore, path: Path) -> None:
    """The poller's per-group read is served by runs_group_active, not a namespace scan."""
    plan = query(
        path,
        "EXPLAIN QUERY PLAN " + ACTIVE_GROUP_RUNS.replace("?", "'x'"),
    )
    assert any("USING INDEX runs_group_active" in str(step[-1]) for step in plan), plan
    assert not any("TEMP B-TREE" in str(step[-1]) for step in plan), plan


def test_the_group_query_names_the_remote_active_states() -> None:
    """The states the group query spells out are exactly the ones Databricks is running."""
    states = re.search(r"state IN \(([^)]*)\)", ACTIVE_GROUP_RUNS)
    assert states is not None
    assert {s.strip(" '") for s in states[1].split(",")} == set(REMOTE_ACTIVE_STATES)


async def test_no_column_could_hold_a_credential(store: SqliteStore, path: Path) -> None:
    """No table has a column for a token, secret, password or credential."""
    tables = [row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type='table'")]
    columns = [
        str(column[1]) for table in tables for column in query(path, f"PRAGMA table_info({table})")
    ]
    assert "spec" in columns
    assert not [c for c in columns if any(w in c for w in ("token", "secret", "passw", "cred"))]


async def test_times_are_stored_as_utc_microseconds(store: SqliteStore, path: Path) -> None:
    """Timestamps are integer microseconds since the epoch, so SQL compares them exactly."""
    await store.create_run(new_run(next_poll_at=at(0.000001)), NOW)
    [(created, poll)] = query(path, "SELECT created_at, next_poll_at FROM runs")
    assert created == int(NOW.timestamp()) * 1_000_000
    assert poll == created + 1


async def test_outbox_failure_rolls_the_transition_back(store: SqliteStore, path: Path) -> None:
    """If the outbox row cannot be written, the state change and its history are undone."""
    run, _ = await store.create_run(new_run(), NOW)
    execute(
        path,
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'full'); END",
    )
    event = {"type": "run.finished", "data": {"state": "FAILED"}}
    with pytest.raises(StoreError, match="full"):
        await store.transition(
            run.id, S.FAILED, expected={S.SUBMITTING}, now=at(1), outbox_event=event
        )
    after = await store.get_run("team-a", run.id, with_history=True)
    assert after is not None
    assert (after.state, len(after.history), after.next_poll_at) == (S.SUBMITTING, 1, None)
    assert query(path, "SELECT count(*) FROM outbox") == [(0,)]


async def test_two_ledgers_have_different_installation_ids(tmp_path: Path) -> None:
    """Each new ledger draws its own installation id."""
    ids = set()
    for name in ("a.db", "b.db"):
        store = SqliteStore(tmp_path / name)
        await store.open()
        ids.add(store.installation_id)
        await store.close()
    assert len(ids) == 2


async def test_in_memory_ledger_works(tmp_path: Path) -> None:
    """ ":memory:" gives a working, private ledger (for one process and tests)."""
    store = SqliteStore(":memory:")
    await store.open()
    try:
        run, _ = await store.create_run(new_run(), NOW)
        assert await store.get_run("team-a", run.id) == run
    finally:
        await store.close()


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    """Opening garbage raises StoreError naming the file, not a sqlite3 exception."""
    path = tmp_path / "garbage.db"
    path.write_bytes(b"not a database, just bytes " * 100)
    with pytest.raises(StoreError, match=r"garbage\.db") as info:
        await SqliteStore(path).open()
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_an_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    """A ledger path below a regular file raises StoreError."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot prepare"):
        await SqliteStore(blocker / "lakegate.db").open()


async def test_a_malformed_row_is_a_store_error(store: SqliteStore, path: Path) -> None:
    """A row the code cannot read (e.g. written by a newer version) raises StoreError."""
    run, _ = await store.create_run(new_run(), NOW)
    execute(path, "UPDATE runs SET labels = '{not json'")
    with pytest.raises(StoreError, match=f"run {run.id}"):
        await store.get_run_by_id(run.id)


async def test_a_malformed_spec_fails_where_it_is_read(store: SqliteStore, path: Path) -> None:
    """The spec is decoded when read: a bad one is a StoreError naming the run there, and
    the rest of the row (all a poll or the API's view needs) still reads."""
    run, _ = await store.create_run(new_run(), NOW)
    execute(path, "UPDATE runs SET spec = '{not json'")
    found = await store.get_run_by_id(run.id)
    assert found is not None
    assert found.namespace == run.namespace
    with pytest.raises(StoreError, match=f"the spec of run {run.id} in the ledger is malformed"):
        found.spec.get("run_name")


async def test_cancelled_callers_leave_no_half_written_run(store: SqliteStore) -> None:
    """Callers cancelled mid-write leave whole runs or none, and the store keeps working."""
    for delay in range(12):
        task = asyncio.create_task(store.create_run(new_run(), NOW))
        for _ in range(delay):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    run, _ = await store.create_run(new_run(), NOW)
    for listed in await store.list_runs("team-a", limit=100):
        got = await store.get_run("team-a", listed.id, with_history=True)
        assert got is not None
        assert len(got.history) == 1
    assert run.id == (await store.list_runs("team-a", limit=1))[0].id


async def test_calls_queued_before_close_finish_and_later_ones_fail(store: SqliteStore) -> None:
    """close() waits for the calls already sent; a call after it raises StoreError."""
    run, _ = await store.create_run(new_run(), NOW)
    reads = [asyncio.create_task(store.get_run_by_id(run.id)) for _ in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert await asyncio.gather(*reads) == [run] * 20
    with pytest.raises(StoreError, match="not open"):
        await store.get_run_by_id(run.id)


async def test_a_cancelled_open_leaves_the_store_reopenable(path: Path) -> None:
    """open() cancelled at any point leaves the store closed or open, and open() then works."""
    for turns in range(8):
        store = SqliteStore(path)
        task = asyncio.create_task(store.open())
        for _ in range(turns):
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.open()
        try:
            run, _ = await store.create_run(new_run(), NOW)
            assert await store.get_run_by_id(run.id) == run
        finally:
            await store.close()


def test_statements_split_where_sqlite_would() -> None:
    """Trigger bodies and comments stay inside their statement; trailing comments are dropped."""
    script = (
        "-- lead\nCREATE TABLE t (x TEXT DEFAULT ';');\n"
        "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 'a;b';\nEND;\n-- end\n"
    )
    assert split_statements(script) == [
        "-- lead\nCREATE TABLE t (x TEXT DEFAULT ';');",
        "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 'a;b';\nEND;",
    ]


def test_a_migration_cut_short_is_refused() -> None:
    """A script ending inside a statement raises instead of applying part of it."""
    with pytest.raises(ValueError, match="middle of a statement"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (\n")


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, 10**30, 2**63 - 1, 1.5, "x" * 25, "1234567890123456789012"],
    ids=["u64+1", "i64-1", "1e30", "i64max", "float", "text", "digits-in-text"],
)
async def test_json_columns_read_back_exactly_as_written(store: SqliteStore, value: object) -> None:
    """A spec holding an integer past 64 bits (which the fast decoder would round to a float)
    reads back equal and of the same type."""
    spec = {"run_name": "big", "tasks": [], "parameters": {"n": value, "nested": [value]}}
    run, _ = await store.create_run(new_run(spec=spec), NOW)
    got = await store.get_run_by_id(run.id)
    assert got is not None
    assert got.spec == spec
    assert type(got.spec["parameters"]["n"]) is type(value)


async def test_reopening_the_ledger_frees_the_leases_of_its_previous_life(path: Path) -> None:
    """SQLite serves one replica: a restart claims every due run and webhook at once."""
    first = SqliteStore(path)
    await first.open()
    run, _ = await first.create_run(new_run("team-a", next_poll_at=at(-5)), at(-10))
    claimed = await first.claim_due_runs(
        NOW, owner="before", lease_seconds=300, states={S.SUBMITTING}, limit=10
    )
    assert [r.id for r in claimed] == [run.id]
    event = {"type": "run.state_changed"}
    await first.transition(
        run.id, S.PENDING, expected={S.SUBMITTING}, now=NOW, databricks_run_id=7, outbox_event=event
    )
    held = await first.claim_outbox(NOW, owner="before", limit=10, lease_seconds=300)
    assert len(held) == 1
    await first.close()  # as a SIGKILL would leave it: the leases still in the file
    assert query(path, "SELECT lease_until IS NOT NULL FROM runs") == [(1,)]
    assert query(path, "SELECT lease_until IS NOT NULL FROM outbox") == [(1,)]

    again = SqliteStore(path)
    await again.open()
    try:
        taken = await again.claim_due_runs(
            NOW, owner="after", lease_seconds=300, states={S.PENDING}, limit=10
        )
        assert [r.id for r in taken] == [run.id]
        redelivered = await again.claim_outbox(NOW, owner="after", limit=10, lease_seconds=300)
        assert [e.id for e in redelivered] == [held[0].id]
    finally:
        await again.close()
