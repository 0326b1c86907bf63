"""The SQLite ledger's run counts: read from run_counts (migration 12) or counted over runs.

    .venv/bin/python tests/bench/bench_counts.py [--runs 200000] [--namespaces 20]

Builds a ledger of ``--runs`` runs over ``--namespaces`` namespaces of one workspace, one in a
hundred active (RUNNING), the rest ended, then times, per call, what the gateway reads on
every run-gauge refresh (the per-state counts of every live run) and on every accepted submit
to a capped workspace (its active runs): the statements it uses, which read run_counts, next
to the count(*) over runs they replaced. Also the time migration 12 took to fill run_counts
from the runs already there. Files only in a temporary directory.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.model import ACTIVE_STATES, TERMINAL_STATES, RunState  # noqa: E402
from gateway.store import _sqlite_quota, _sqlite_sql  # noqa: E402
from gateway.store._sqlite_schema import migrate  # noqa: E402
from gateway.store.migrate import load_migrations  # noqa: E402

# What the counts were before migration 12: count(*) over the runs' indexes.
OVER_RUNS_BY_STATE = """
SELECT namespace, state, count(*) AS n FROM runs
WHERE state IN (SELECT value FROM json_each(?)) GROUP BY namespace, state
"""
OVER_RUNS_WORKSPACE = """
SELECT count(*) AS n FROM runs WHERE workspace = ? AND state IN (SELECT value FROM json_each(?))
"""


def per_call_us(call: Callable[[], object], seconds: float = 1.0) -> float:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        call()
        calls += 1
    return elapsed / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--namespaces", type=int, default=20)
    args = parser.parse_args()
    migrations = load_migrations("sqlite")
    counts = next(m for m in migrations if m.name == "run_counts")
    with tempfile.TemporaryDirectory() as tmp, closing(sqlite3.connect(Path(tmp) / "l.db")) as conn:
        migrate(conn, tuple(m for m in migrations if m.version < counts.version))
        with conn:
            conn.executemany(
                "INSERT INTO runs (namespace, state, spec, request_fingerprint, workspace,"
                " created_at, updated_at) VALUES (?, ?, '{}', 'f', 'main', ?, ?)",
                (
                    (f"ns-{i % args.namespaces}", "RUNNING" if i % 100 == 0 else "SUCCEEDED", i, i)
                    for i in range(args.runs)
                ),
            )
        started = time.perf_counter()
        migrate(conn, migrations)
        fill = time.perf_counter() - started
        live = _sqlite_sql.states_param([s for s in RunState if s not in TERMINAL_STATES])
        active = _sqlite_sql.states_param(ACTIVE_STATES)
        rows = [
            (
                "run gauges' per-state counts",
                lambda: conn.execute(_sqlite_sql.COUNT_ALL_RUNS, (live,)).fetchall(),
                lambda: conn.execute(OVER_RUNS_BY_STATE, (live,)).fetchall(),
            ),
            (
                "a workspace's active runs",
                lambda: _sqlite_quota.active_and_queued(
                    conn, _sqlite_quota.WORKSPACE_COUNTS, "main"
                )[0],
                lambda: conn.execute(OVER_RUNS_WORKSPACE, ("main", active)).fetchone()[0],
            ),
        ]
        print(
            f"run counts: {args.runs:,} runs over {args.namespaces} namespaces, "
            f"{args.runs // 100:,} active; migration 12 filled run_counts in {fill:.2f} s"
        )
        for what, ours, before in rows:
            assert ours() == before(), what
            new, old = per_call_us(ours), per_call_us(before)
            print(f"  {what:32} run_counts {new:9.1f} us   count(*) over runs {old:9.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
