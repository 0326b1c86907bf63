"""SQLite only: how the ledger keeps run time (migration 7) and what reading it costs."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.model import TERMINAL_STATES
from gateway.store._sqlite_quota import RUN_SECONDS, RUN_SPANS
from gateway.store._sqlite_schema import migrate
from gateway.store._sqlite_sql import to_us
from gateway.store.migrate import load_migrations
from tests.store.factories import NOW, at
from tests.store.old_ledger import ledger_before, upgraded

MIGRATION = next(m for m in load_migrations("sqlite") if m.name == "run_hours")


def test_the_triggers_name_every_terminal_state() -> None:
    """A run ends, for run time, in exactly the states the model calls terminal."""
    lists = re.findall(r"IN\s*\(([^)]*)\)", MIGRATION.sql)
    assert lists
    for found in lists:
        assert {s.strip(" '\n") for s in found.split(",")} == set(TERMINAL_STATES)


@pytest.mark.parametrize("sql", [RUN_SECONDS, RUN_SPANS])
def test_run_time_reads_two_ranges_of_its_covering_index(tmp_path: Path, sql: str) -> None:
    """Both reads stay within the namespace's active runs and those ended in the window."""
    with closing(sqlite3.connect(tmp_path / "plan.db")) as conn:
        migrate(conn, load_migrations("sqlite"))
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + sql, {"ns": "a", "now": 10, "since": 1}
        ).fetchall()
    searches = [str(step[-1]) for step in plan if "runs" in str(step[-1])]
    assert len(searches) == 2, plan
    assert all("COVERING INDEX runs_run_time" in step for step in searches), plan
    assert "ended_at>?" in searches[1].replace(" ", ""), plan


def _old_ledger(path: Path) -> None:
    """A ledger at migration 6 with one run queued, admitted and ended."""
    with ledger_before(path, MIGRATION.name) as conn:
        conn.execute(
            "INSERT INTO runs (id, namespace, state, spec, request_fingerprint, workspace,"
            " created_at, updated_at) VALUES (1, 'team-a', 'SUCCEEDED', '{}', 'f', 'ws', 0, 0)"
        )
        for to_state, seconds in [("QUEUED", -100), ("SUBMITTING", -60), ("SUCCEEDED", -10)]:
            conn.execute(
                "INSERT INTO run_transitions (run_id, to_state, at) VALUES (1, ?, ?)",
                (to_state, to_us(at(seconds))),
            )


async def test_a_ledger_from_before_takes_run_times_from_its_history(tmp_path: Path) -> None:
    """Runs written before migration 7 get started_at and ended_at from run_transitions."""
    async with upgraded(tmp_path / "old.db", _old_ledger) as store:
        assert await store.run_spans("team-a", NOW) == [(at(-60), at(-10))]
