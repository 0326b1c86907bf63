"""SQLite only: run_counts (migration 12), the per-state counts that triggers keep beside runs.

Admission and the metrics read their counts from it, so it must equal a count(*) over the
runs after any write: the triggers' own logic is checked at the SQL level, over arbitrary
inserts, updates and deletes, and the migration's backfill over a ledger from before it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model import ACTIVE_STATES, RunState
from gateway.store import _sqlite_quota, _sqlite_sql
from gateway.store._sqlite_schema import migrate
from gateway.store.migrate import load_migrations
from tests.store.factories import NOW, new_run
from tests.store.old_ledger import ledger_before, upgraded

MIGRATION = next(m for m in load_migrations("sqlite") if m.name == "run_counts")
NAMESPACES = st.sampled_from(["team-a", "team-b", "team-c"])
WORKSPACES = st.sampled_from(["main", "other"])
STATES = st.sampled_from(sorted(RunState))


def _counted(conn: sqlite3.Connection) -> set[tuple[str, str, str, int]]:
    return set(conn.execute("SELECT namespace, workspace, state, n FROM run_counts WHERE n != 0"))


def _truth(conn: sqlite3.Connection) -> set[tuple[str, str, str, int]]:
    return set(
        conn.execute(
            "SELECT namespace, workspace, state, count(*) FROM runs"
            " GROUP BY namespace, workspace, state"
        )
    )


def _insert(conn: sqlite3.Connection, namespace: str, workspace: str, state: str) -> None:
    conn.execute(
        "INSERT INTO runs (namespace, state, spec, request_fingerprint, workspace, created_at,"
        " updated_at) VALUES (?, ?, '{}', 'f', ?, 0, 0)",
        (namespace, state, workspace),
    )


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), NAMESPACES, WORKSPACES, STATES),
        st.tuples(st.just("state"), st.integers(0, 30), STATES),
        st.tuples(st.just("move"), st.integers(0, 30), NAMESPACES, WORKSPACES),
        st.tuples(st.just("touch"), st.integers(0, 30)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_the_counts_follow_every_write_of_runs(operations: list[tuple[object, ...]]) -> None:
    """Inserts, state changes, a run moved to another namespace or workspace, a write that
    changes none of them, deletes: afterwards run_counts says what count(*) says."""
    with closing(sqlite3.connect(":memory:")) as conn:
        migrate(conn, load_migrations("sqlite"))
        for operation in operations:
            kind, *args = operation
            ids = [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY id")]
            if kind == "insert":
                _insert(conn, *args)  # type: ignore[arg-type]
            elif ids:
                run_id = ids[int(args[0]) % len(ids)]  # type: ignore[call-overload]
                if kind == "state":
                    conn.execute("UPDATE runs SET state = ? WHERE id = ?", (args[1], run_id))
                elif kind == "move":
                    conn.execute(
                        "UPDATE runs SET namespace = ?, workspace = ? WHERE id = ?",
                        (args[1], args[2], run_id),
                    )
                elif kind == "touch":
                    conn.execute(
                        "UPDATE runs SET updated_at = updated_at + 1 WHERE id = ?", (run_id,)
                    )
                else:
                    conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        assert _counted(conn) == _truth(conn)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (_sqlite_sql.COUNT_ALL_RUNS, ('["RUNNING"]',)),
        (_sqlite_sql.COUNT_RUNS, ("team-a", '["RUNNING"]')),
        (_sqlite_quota.ACTIVE_COUNTS, ('["RUNNING"]',)),
        (_sqlite_quota.QUEUED_COUNTS, ()),
    ],
)
def test_the_gauges_and_the_queue_pass_count_without_reading_runs(
    sql: str, params: tuple[str, ...]
) -> None:
    """The run gauges' counts (every refresh) and the queue pass's read run_counts only: a
    count(*) over runs read every run the ledger ever had."""
    with closing(sqlite3.connect(":memory:")) as conn:
        migrate(conn, load_migrations("sqlite"))
        plan = [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert any("run_counts" in step for step in plan), plan
    assert not any(" runs " in f" {step} " for step in plan), plan


def _old_ledger(path: Path) -> None:
    """A ledger at migration 11 with runs of two namespaces and two workspaces."""
    with ledger_before(path, "run_counts") as conn:
        for namespace, workspace, state, times in [
            ("team-a", "main", "RUNNING", 3),
            ("team-a", "main", "SUCCEEDED", 2),
            ("team-a", "other", "QUEUED", 1),
            ("team-b", "main", "PENDING", 4),
        ]:
            for _ in range(times):
                _insert(conn, namespace, workspace, state)


async def test_a_ledger_from_before_counts_the_runs_it_has(tmp_path: Path) -> None:
    """Migration 12 counts the runs already there; reads and later writes go on from it."""
    async with upgraded(tmp_path / "old.db", _old_ledger) as store:
        assert await store.count_runs("team-a", ACTIVE_STATES) == 3
        assert await store.counts_by_namespace_state() == {
            ("team-a", RunState.RUNNING): 3,
            ("team-a", RunState.SUCCEEDED): 2,
            ("team-a", RunState.QUEUED): 1,
            ("team-b", RunState.PENDING): 4,
        }
        assert await store.active_counts() == {("main", "team-a"): 3, ("main", "team-b"): 4}
        assert await store.queue_counts() == (
            {("other", "team-a"): 1},
            {("main", "team-a"): 3, ("main", "team-b"): 4},
        )
        await store.create_run(dataclasses.replace(new_run("team-b"), workspace="main"), NOW)
        assert await store.active_counts() == {("main", "team-a"): 3, ("main", "team-b"): 5}
