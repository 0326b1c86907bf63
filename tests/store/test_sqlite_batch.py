"""Group commit: the writes queued together share one transaction and one COMMIT, each still
all-or-nothing for its own caller.

Each test holds the ledger's thread on a gate while it queues jobs, so the jobs are one batch
by construction, not by timing; the commit counter on the connection is the seam that shows
how many COMMITs (so fsyncs) they cost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import Conflict, QuotaExceeded, StoreError
from gateway.model import NamespaceUsage, RunState
from gateway.store._sqlite_connection import Connection
from gateway.store._sqlite_worker import Worker
from gateway.store.sqlite import SqliteStore
from tests.store.factories import NOW, new_run

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS part (item INTEGER NOT NULL"
    " REFERENCES item (id) DEFERRABLE INITIALLY DEFERRED)",
)


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    conn = Connection(str(tmp_path / "ledger.db"), 5.0)
    worker = Worker(conn)
    await worker.call(conn.connect)
    for sql in SCHEMA:
        await worker.write(lambda c, sql=sql: c.execute(sql))
    yield worker
    if not worker.stopped:
        await worker.call(conn.disconnect)
        worker.stop()


class Gate:
    """Holds the ledger's thread until opened, so whatever is queued meanwhile is one batch."""

    def __init__(self, worker: Worker) -> None:
        self._open = threading.Event()
        self._held = worker.call(self._open.wait)

    async def open(self) -> None:
        self._open.set()
        await self._held


def insert(name: str) -> Callable[[sqlite3.Connection], int]:
    def body(conn: sqlite3.Connection) -> int:
        row_id = conn.execute("INSERT INTO item (name) VALUES (?)", (name,)).lastrowid
        assert row_id is not None
        return row_id

    return body


def names(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM item ORDER BY id")]


async def test_writes_queued_together_commit_once(worker: Worker, tmp_path: Path) -> None:
    """Ten writes queued while the thread is busy are one COMMIT, each answered its own row."""
    commits = worker.conn.commits
    gate = Gate(worker)
    futures = [worker.write(insert(f"w{i}")) for i in range(10)]
    await gate.open()
    ids = await asyncio.gather(*futures)
    assert worker.conn.commits == commits + 1
    assert len(set(ids)) == 10
    with closing(sqlite3.connect(tmp_path / "ledger.db")) as conn:
        rows = dict(conn.execute("SELECT id, name FROM item").fetchall())
    assert [rows[i] for i in ids] == [f"w{i}" for i in range(10)]


async def test_a_failing_write_leaves_the_others_of_its_batch_committed(
    worker: Worker, tmp_path: Path
) -> None:
    """A write that raises after writing, or whose statement fails, is undone alone."""

    def conflicting(conn: sqlite3.Connection) -> None:
        insert("undone")(conn)
        raise Conflict("Idempotency-Key reused with another body")

    def duplicate(conn: sqlite3.Connection) -> None:
        insert("undone too")(conn)
        conn.execute("INSERT INTO item (id, name) VALUES (1, 'dup')")

    gate = Gate(worker)
    futures = [
        worker.write(insert("first")),
        worker.write(conflicting),
        worker.write(insert("second")),
        worker.write(duplicate),
        worker.write(insert("third")),
    ]
    await gate.open()
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(outcomes[1], Conflict)
    assert isinstance(outcomes[3], StoreError)
    assert isinstance(outcomes[3].__cause__, sqlite3.IntegrityError)
    assert all(isinstance(outcomes[i], int) for i in (0, 2, 4))
    assert names(tmp_path / "ledger.db") == ["first", "second", "third"]


async def test_a_failed_commit_fails_every_write_of_the_batch(
    worker: Worker, tmp_path: Path
) -> None:
    """When the batch's COMMIT fails, no write of it is made and each caller hears so."""

    def orphan(conn: sqlite3.Connection) -> None:
        # Checked at COMMIT only: the whole batch's COMMIT is refused.
        conn.execute("INSERT INTO part (item) VALUES (999)")

    commits = worker.conn.commits
    gate = Gate(worker)
    futures = [worker.write(insert("a")), worker.write(orphan), worker.write(insert("b"))]
    await gate.open()
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 3  # one exception per caller
    assert names(tmp_path / "ledger.db") == []
    assert worker.conn.commits == commits
    # The thread goes on: the next batch commits.
    assert await worker.write(insert("c")) > 0
    assert names(tmp_path / "ledger.db") == ["c"]


async def test_reads_of_a_batch_are_answered_apart(worker: Worker) -> None:
    """A read that raises leaves the other reads of its batch their answers."""
    await worker.write(insert("x"))

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM item").fetchone()[0])

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM nowhere")

    gate = Gate(worker)
    futures = [worker.read(count), worker.read(broken), worker.read(count)]
    await gate.open()
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert outcomes[0] == outcomes[2] == 1
    assert isinstance(outcomes[1], StoreError)


async def test_a_write_cancelled_before_its_batch_never_runs(
    worker: Worker, tmp_path: Path
) -> None:
    """A caller that gave up before the thread reached its write leaves nothing written."""
    gate = Gate(worker)
    dropped = worker.write(insert("dropped"))
    kept = worker.write(insert("kept"))
    dropped.cancel()
    await gate.open()
    await kept
    assert names(tmp_path / "ledger.db") == ["kept"]


async def test_concurrent_submissions_share_commits_and_quota_refusals_stay_alone(
    tmp_path: Path,
) -> None:
    """Runs created together through the store are one COMMIT; the one that admission refuses
    (QuotaExceeded in its admit callback) is the only one not created."""
    store = SqliteStore(tmp_path / "lakegate.db")
    await store.open()
    try:
        worker = store._worker  # the store's own thread, held so the batch is certain
        assert worker is not None

        def admit(refuse: bool) -> Callable[[NamespaceUsage], Any]:
            def decide(_usage: NamespaceUsage) -> RunState:
                if refuse:
                    raise QuotaExceeded("full", namespace="team-a", retry_after=1.0)
                return RunState.SUBMITTING

            return decide

        commits, jobs = store.commits
        gate = Gate(worker)
        calls = [
            asyncio.ensure_future(store.create_run(new_run(key=f"k{i}"), NOW, admit=admit(i == 3)))
            for i in range(8)
        ]
        await asyncio.sleep(0)  # every call queues its job before the gate opens
        await gate.open()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(outcomes[3], QuotaExceeded)
        created = [o for i, o in enumerate(outcomes) if i != 3]
        assert all(isinstance(o, tuple) and o[1] for o in created), outcomes
        assert store.commits == (commits + 1, jobs + 7)
        for i, outcome in enumerate(outcomes):
            found = await store.get_run_by_idempotency_key("team-a", f"k{i}")
            if i == 3:
                assert found is None
            else:
                assert isinstance(outcome, tuple)
                assert found == outcome[0]
    finally:
        await store.close()


async def test_a_job_queued_after_the_end_is_answered(worker: Worker) -> None:
    """A job sent after stop() fails with StoreError instead of waiting for ever."""
    gate = Gate(worker)
    worker.call(worker.conn.disconnect)
    worker.stop()
    late = worker.write(insert("late"))
    await gate.open()
    with pytest.raises(StoreError, match="not open"):
        await asyncio.wait_for(late, 5)


async def test_a_statement_that_ends_the_transaction_fails_the_writes_before_it_alone(
    worker: Worker, tmp_path: Path
) -> None:
    """When one job's statement takes the whole transaction with it (as a full disk does), the
    writes before it fail with it, unmade, and the ones after it commit in a new one."""

    def ends_it(conn: sqlite3.Connection) -> None:
        insert("gone")(conn)
        conn.execute("ROLLBACK")

    gate = Gate(worker)
    futures = [worker.write(insert("a")), worker.write(ends_it), worker.write(insert("c"))]
    await gate.open()
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(outcomes[0], StoreError)
    assert isinstance(outcomes[1], StoreError)
    assert isinstance(outcomes[2], int)
    assert names(tmp_path / "ledger.db") == ["c"]


async def test_reads_answered_before_the_transaction_ended_stand(worker: Worker) -> None:
    """A read whose transaction a later read ended keeps its answer; the reads after it run."""
    await worker.write(insert("x"))

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM item").fetchone()[0])

    def ends_it(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise RuntimeError("gone")

    gate = Gate(worker)
    futures = [worker.read(count), worker.read(ends_it), worker.read(count)]
    await gate.open()
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert outcomes[0] == outcomes[2] == 1
    assert isinstance(outcomes[1], RuntimeError)
