"""Bringing a SQLite ledger up: its directory, its connection settings and its migrations."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import aiosqlite
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random

from gateway.store.migrate import Migration, load_migrations


def prepare(path: str) -> tuple[Migration, ...]:
    """Blocking start-up work, run in a thread: the ledger's directory and the migrations."""
    if path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    migrations = load_migrations("sqlite")
    for migration in migrations:
        split_statements(migration.sql)  # a malformed file fails here, before any connection
    return migrations


async def configure(conn: aiosqlite.Connection, busy_timeout_ms: int) -> None:
    # The busy timeout first, so the rest waits for other processes instead of failing.
    # synchronous=FULL: an accepted run must survive a power cut, not only a crash, before
    # Databricks hears of it.
    await conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
    await _enter_wal(conn, patience=busy_timeout_ms / 1000)
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute("PRAGMA foreign_keys = ON")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


async def _enter_wal(conn: aiosqlite.Connection, *, patience: float) -> None:
    # Turning a new file to WAL needs an exclusive lock, and SQLite reports "locked" at once,
    # without waiting out the busy timeout, while another process does the same: so a few
    # processes starting on a fresh ledger together retry here instead.
    retrying = AsyncRetrying(
        retry=retry_if_exception(_locked),
        wait=wait_random(0.005, 0.05),
        stop=stop_after_delay(patience),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await conn.execute("PRAGMA journal_mode = WAL")


async def migrate(conn: aiosqlite.Connection, migrations: tuple[Migration, ...]) -> None:
    """Apply pending migrations in order, each atomically with its schema_migrations row."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for migration in migrations:
        try:
            await conn.execute("BEGIN IMMEDIATE")
            # Checked under the write lock, so two processes opening one ledger at once cannot
            # both apply a migration.
            done = await conn.execute_fetchall(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            )
            if not list(done):
                for statement in split_statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (migration.version, migration.name),
                )
            await conn.commit()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await conn.rollback()
            raise


def split_statements(script: str) -> list[str]:
    """Split a script where sqlite itself would.

    Statements run one by one inside our own transaction, because ``executescript`` would
    commit it first and a half-applied migration could then be left behind.
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise ValueError("a migration ends in the middle of a statement")
    return statements
