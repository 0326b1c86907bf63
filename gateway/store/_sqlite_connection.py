"""The sqlite3 connection of an open ledger, the store's lifetime, and the one place sqlite's
exceptions become ours.

The connection lives on the ``Worker``'s one thread and never leaves it (``_sqlite_worker``
says how its jobs are batched); ``SqliteLifetime`` opens and closes the pair for the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator

from gateway.errors import StoreError
from gateway.store._sqlite_health import FileId, file_identity
from gateway.store._sqlite_schema import configure, migrate, prepare
from gateway.store._sqlite_sql import one
from gateway.store._sqlite_worker import Body, T, Worker

# RETURNING arrived in 3.35 and json_each was built in by default from 3.38.
MIN_SQLITE = (3, 38, 0)

__all__ = ["Body", "Connection", "SqliteLifetime", "translated"]

FREE_LEASES = (
    "UPDATE runs SET lease_until = NULL WHERE lease_until IS NOT NULL",
    "UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL",
)


class Connection:
    """The sqlite3 connection of one open(): every method runs on its worker's thread."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self.raw: sqlite3.Connection | None = None
        # The file this connection opened, which the readiness probe compares the path with.
        self.file_id: FileId | None = None
        # Write transactions committed, and the writes made in them: the seam that shows (in
        # tests and benchmarks) how many fsyncs the writes cost.
        self.commits = 0
        self.committed_jobs = 0

    def connect(self) -> str:
        """Connect, configure and migrate; return the installation id."""
        try:
            migrations = prepare(self._path)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot prepare the run ledger at {self._path}: {exc}") from exc
        with translated(f"opening the run ledger at {self._path}"):
            conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                configure(conn, int(self._busy_timeout * 1000))
                migrate(conn, migrations)
                # A SQLite ledger serves one replica: whatever leases it holds were taken by
                # this replica's previous life, now dead. Freed at once, a restart follows
                # every run again, and redelivers, at once instead of after the lease time.
                for statement in FREE_LEASES:
                    conn.execute(statement)
                row = one(conn, "SELECT value FROM meta WHERE key = 'installation_id'")
                if row is None:
                    raise StoreError("the run ledger has no installation id")
            except BaseException:
                conn.close()
                raise
        try:
            self.file_id = file_identity(self._path)
        except OSError as exc:
            conn.close()
            raise StoreError(f"cannot look at the run ledger at {self._path}: {exc}") from exc
        self.raw = conn
        return str(row["value"])

    def disconnect(self) -> None:
        conn, self.raw = self.raw, None
        if conn is not None:
            with translated("closing the run ledger"):
                conn.close()


class SqliteLifetime:
    """Opening and closing the store's connection and its thread; ``_run`` queues a job."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._busy_timeout = busy_timeout
        # Both set while the store is open, and only on the event loop: a connection lives on
        # its worker's one thread, and every job on that thread gets that connection.
        self._worker: Worker | None = None
        self._conn: Connection | None = None
        self._installation_id: str | None = None
        # Serializes open() and close() only; operations never take it.
        self._lifetime = asyncio.Lock()

    @property
    def installation_id(self) -> str:
        if self._installation_id is None:
            raise StoreError("the run ledger is not open")
        return self._installation_id

    @property
    def commits(self) -> tuple[int, int]:
        """Write transactions committed since open(), and the writes they carried."""
        conn = self._conn
        return (0, 0) if conn is None else (conn.commits, conn.committed_jobs)

    async def open(self) -> None:
        async with self._lifetime:
            if self._worker is not None:
                return
            if sqlite3.sqlite_version_info < MIN_SQLITE:
                raise StoreError(
                    f"SQLite {sqlite3.sqlite_version} is too old: lakegate needs 3.38+"
                )
            conn = Connection(self._path, self._busy_timeout)
            worker = Worker(conn)
            try:
                installation_id = await worker.call(conn.connect)
            except BaseException:
                # A cancelled open() may still connect; the job queued behind undoes that.
                worker.call(conn.disconnect)
                worker.stop()
                raise
            self._worker, self._conn = worker, conn
            self._installation_id = installation_id

    async def close(self) -> None:
        async with self._lifetime:
            worker, conn = self._worker, self._conn
            self._worker, self._conn, self._installation_id = None, None, None
            if worker is None or conn is None:
                return
            try:
                # Behind the jobs callers already queued, which finish first; shielded, so a
                # cancelled close() still closes the connection.
                await asyncio.shield(worker.call(conn.disconnect))
            finally:
                worker.stop()

    async def _run(self, body: Body[T], *, write: bool) -> T:
        """Run ``body`` in a transaction on the store's thread (batched), and wait for it."""
        worker = self._worker
        if worker is None:
            raise StoreError("the run ledger is not open")
        return await (worker.write(body) if write else worker.read(body))


@contextlib.contextmanager
def translated(doing: str) -> Iterator[None]:
    """The one place where sqlite's exceptions become ours."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{doing}: {type(exc).__name__}: {exc}") from exc
