"""Bringing a SQLite ledger up: its directory, its connection settings and its migrations.

Everything here blocks: it runs on the store's own thread, never on the event loop.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from gateway.store._sqlite_sql import atomic
from gateway.store.migrate import Migration, load_migrations


def prepare(path: str) -> tuple[Migration, ...]:
    """Start-up work before connecting: the ledger's directory and the migrations."""
    if path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    migrations = load_migrations("sqlite")
    for migration in migrations:
        split_statements(migration.sql)  # a malformed file fails here, before any connection
    return migrations


def configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # The busy timeout first, so the rest waits for other processes instead of failing.
    # synchronous=FULL: an accepted run must survive a power cut, not only a crash, before
    # Databricks hears of it.
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
    _enter_wal(conn, patience=busy_timeout_ms / 1000)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _enter_wal(conn: sqlite3.Connection, *, patience: float) -> None:
    # Turning a new file to WAL needs an exclusive lock, and SQLite reports "locked" at once,
    # without waiting out the busy timeout, while another process does the same: so a few
    # processes starting on a fresh ledger together retry here instead.
    retrying = Retrying(
        retry=retry_if_exception(_locked),
        wait=wait_random(0.005, 0.05),
        stop=stop_after_delay(patience),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            conn.execute("PRAGMA journal_mode = WAL")


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...]) -> None:
    """Apply pending migrations in order, each atomically with its schema_migrations row."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for migration in migrations:
        # The check runs under the write lock, so two processes opening one ledger at once
        # cannot both apply a migration.
        with atomic(conn):
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (migration.version, migration.name),
                )


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
