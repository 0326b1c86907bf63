"""Every index of the SQLite ledger's runs table is read by one of the store's queries.

An index costs every write of a run: on an accepted submit, an entry on insert and a moved
entry on the move to PENDING, each a page in the commit's WAL. One that no query reads is
pure cost (migration 13 dropped two), so each index here names the statement that reads it,
and a new index without a reader, or a reader whose plan left its index, fails.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.store import _sqlite_connection, _sqlite_leases, _sqlite_quota, _sqlite_sql

_NAMED = {"ns": "team-a", "ref": "{}", "owner": "r1", "now": 0, "until": 0, "limit": 1,
          "states": '["RUNNING"]', "ids": "[1]", "at": 0, "since": 0, "rows": 1, "burst": 1,
          "rate": 1.0}  # fmt: skip

# index -> a statement the store runs that reads it, with parameters to plan it with.
READERS: dict[str, tuple[str, Any]] = {
    "runs_idempotency": (_sqlite_sql.BY_IDEMPOTENCY_KEY, ("team-a", "key")),
    "runs_namespace_id": (_sqlite_sql.LIST_RUNS, ("team-a", 10, '["RUNNING"]', 1)),
    "runs_due": (_sqlite_sql.DUE_RUNS, (0, '["RUNNING"]', 1)),
    "runs_namespace_remote": (_sqlite_sql.BY_REMOTE_ID, ("team-a", 1)),
    "runs_group_active": (_sqlite_sql.ACTIVE_GROUP_RUNS, ("team-a", "{}")),
    "runs_namespace_created": (_sqlite_quota.RATE_WAIT, _NAMED),
    "runs_queued": (_sqlite_quota.QUEUED_HEADS_OF, ('["team-a"]', 1)),
    "runs_run_time": (_sqlite_quota.RUN_SECONDS, _NAMED),
    "runs_leased": (_sqlite_leases.RELEASE, _NAMED),
    "runs_ended": (_sqlite_quota.MEAN_RUN, ("team-a", 0)),
}


def _indexes(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'"
            " AND name NOT LIKE 'sqlite_autoindex_%'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def _plan(path: Path, sql: str, params: Any) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def test_every_index_of_runs_has_a_reader(sqlite_file: Path) -> None:
    """The migrated ledger's indexes of runs are exactly the ones READERS names."""
    assert _indexes(sqlite_file) == set(READERS)


def test_the_unread_indexes_are_gone(sqlite_file: Path) -> None:
    """Migration 13 dropped the two indexes no query read any more."""
    assert not {"runs_workspace_state", "runs_namespace_state"} & _indexes(sqlite_file)


@pytest.mark.parametrize("index", sorted(READERS))
def test_each_index_is_in_its_readers_plan(sqlite_file: Path, index: str) -> None:
    """SQLite plans the statement named for the index with that index."""
    sql, params = READERS[index]
    plan = _plan(sqlite_file, sql, params)
    assert any(f"INDEX {index} " in f"{step} " for step in plan), plan


def test_free_leases_reads_the_leased_runs_only(sqlite_file: Path) -> None:
    """Start-up's lease reset walks runs_leased, not the runs table."""
    plan = _plan(sqlite_file, _sqlite_connection.FREE_LEASES[0], ())
    assert plan == ["SCAN runs USING INDEX runs_leased"], plan
