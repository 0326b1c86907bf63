"""The admission reads' query plans: each is an index range, covering where it can be.

create_run runs these inside its write transaction on every submission (the counts and the
bucket) or on a refusal (the mean run time), so a plan that reads table rows, or sorts, is a
cost every submission pays.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.model import TERMINAL_STATES
from gateway.store import _pg_quota, _sqlite_quota
from tests.store.pg import pg_store

PARAMS = {"ns": "team-a", "at": 0, "since": 0, "rows": 1, "burst": 1, "rate": 1.0}


def _plan(path: Path, sql: str, params: Any) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def _only_covering_ranges(plan: list[str], index: str) -> None:
    assert any(f"SEARCH runs USING COVERING INDEX {index} " in step for step in plan), plan
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN runs") for step in plan), plan


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (_sqlite_quota.RATE_WAIT, PARAMS, "runs_namespace_created"),
        (_sqlite_quota.LAST_MINUTE, ("team-a", 0, 1), "runs_namespace_created"),
        (_sqlite_quota.MEAN_RUN, ("team-a", 0), "runs_ended"),
    ],
)
def test_sqlite_admission_reads_are_covering_index_ranges(
    sqlite_file: Path, sql: str, params: Any, index: str
) -> None:
    """Every admission read is a range of one covering index: no table row, no sort. The mean
    run time is runs_ended's (migration 11), which only ended runs are in."""
    _only_covering_ranges(_plan(sqlite_file, sql, params), index)


@pytest.mark.parametrize(
    ("sql", "key", "search"),
    [
        (_sqlite_quota.NAMESPACE_COUNTS, "team-a", "PRIMARY KEY (namespace=?)"),
        (_sqlite_quota.WORKSPACE_COUNTS, "ws", "INDEX run_counts_workspace (workspace=?)"),
    ],
)
def test_sqlite_admission_counts_read_a_few_rows_of_run_counts(
    sqlite_file: Path, sql: str, key: str, search: str
) -> None:
    """The counts are the namespace's (or workspace's) rows of run_counts (migration 12),
    found by key, one per state it has runs in: the runs table is not read at all."""
    plan = _plan(sqlite_file, sql, (key,))
    assert any(step.startswith(f"SEARCH run_counts USING {search}") for step in plan), plan
    assert not any(" runs " in f" {step} " for step in plan), plan


@pytest.mark.parametrize("module", [_sqlite_quota, _pg_quota])
def test_the_mean_run_query_names_the_terminal_states(module: object) -> None:
    """The literal state list that matches runs_ended's predicate is TERMINAL_STATES."""
    found = re.search(r"state IN \(([^)]*)\)", module.MEAN_RUN)  # type: ignore[attr-defined]
    assert found is not None
    assert {s.strip(" '") for s in found[1].split(",")} == {s.value for s in TERMINAL_STATES}


def _migration_states(dialect: str) -> set[str]:
    folder = Path(_sqlite_quota.__file__).parent / "migrations" / dialect
    text = next(folder.glob("*_runs_ended.sql")).read_text(encoding="utf-8")
    found = re.search(r"WHERE state IN \(([^)]*)\)", text)
    assert found is not None
    return {s.strip(" '\n") for s in found[1].split(",")}


def test_the_runs_ended_indexes_hold_the_terminal_states() -> None:
    """Both migrations' predicates are TERMINAL_STATES, as the queries spell them."""
    terminal = {s.value for s in TERMINAL_STATES}
    assert _migration_states("sqlite") == _migration_states("postgres") == terminal


def _lines(rows: list[asyncpg.Record]) -> Iterator[str]:
    return (str(row[0]) for row in rows)


async def test_postgres_reads_the_mean_run_time_from_runs_ended(pg_dsn: str) -> None:
    """On PostgreSQL too the mean run time can be an index-only range of runs_ended (the plan
    a busy ledger gets; sequential scans are turned off, as an empty table would pick one)."""
    store = pg_store(pg_dsn)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        sql = _pg_quota.MEAN_RUN.replace("$1", "'team-a'").replace("$2", "now()")
        plan = list(_lines(await conn.fetch("EXPLAIN " + sql)))
    finally:
        await conn.close()
    assert any("Index Only Scan using runs_ended" in line for line in plan), plan
