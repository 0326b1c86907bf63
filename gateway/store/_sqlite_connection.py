"""The sqlite3 connection of an open ledger, and the one place sqlite's exceptions become ours.

Every method of ``Connection`` runs on the store's one executor thread, never on the loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import TypeVar

from gateway.errors import StoreError
from gateway.store._sqlite_health import FileId, file_identity
from gateway.store._sqlite_schema import configure, migrate, prepare
from gateway.store._sqlite_sql import atomic, one

T = TypeVar("T")
Body = Callable[[sqlite3.Connection], T]


class Connection:
    """The sqlite3 connection of one open(): every method runs on its executor's thread."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        # The file this connection opened, which the readiness probe compares the path with.
        self.file_id: FileId | None = None

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
        self._conn = conn
        return str(row["value"])

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with translated("closing the run ledger"):
                conn.close()

    def transaction(self, body: Body[T], write: bool) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError("the run ledger is not open")
        with translated("using the run ledger"):
            if conn.in_transaction:
                # Left open by a rollback that failed; none of it was committed.
                conn.execute("ROLLBACK")
            with atomic(conn, "BEGIN IMMEDIATE" if write else "BEGIN"):
                return body(conn)


@contextlib.contextmanager
def translated(doing: str) -> Iterator[None]:
    """The one place where sqlite's exceptions become ours."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{doing}: {type(exc).__name__}: {exc}") from exc
