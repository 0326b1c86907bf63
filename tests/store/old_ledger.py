"""SQLite ledgers as an earlier version left them, for the tests of a migration's backfill."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path

from gateway.store._sqlite_schema import configure, migrate
from gateway.store.migrate import load_migrations
from gateway.store.sqlite import SqliteStore


@contextmanager
def ledger_before(path: Path, migration: str) -> Iterator[sqlite3.Connection]:
    """A ledger at ``path`` with every migration before the one named ``migration``, and a
    transaction on it for the rows the test puts there (committed when the block ends)."""
    migrations = load_migrations("sqlite")
    version = next(m.version for m in migrations if m.name == migration)
    with closing(sqlite3.connect(path)) as conn:
        configure(conn, 1000)
        migrate(conn, tuple(m for m in migrations if m.version < version))
        with conn:
            yield conn


@asynccontextmanager
async def upgraded(path: Path, fill: Callable[[Path], None]) -> AsyncIterator[SqliteStore]:
    """The store on the ledger ``fill`` left at ``path`` (in a thread: it is file I/O), opened
    (so migrated to the current schema), closed when the block ends."""
    await asyncio.to_thread(fill, path)
    store = SqliteStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
