"""Whether the open ledger is still the file it opened, and whether it still takes a write.

An open sqlite3 connection keeps writing to the inode it opened: if the file is deleted or
replaced (a restore gone wrong, a volume remounted, an operator's ``mv``), every run accepted
from then on is committed to a file nobody will ever open again, and ``SELECT 1`` still
answers. So ``ping`` compares the path's (st_dev, st_ino) with what was opened, checks that
the file and its directory are still writable (a restart must be able to open them), and makes
one real write, at most every ``WRITE_PROBE_SECONDS`` so that /readyz stays cheap; a write that
does not finish within ``WRITE_PROBE_TIMEOUT`` (a stalled disk, another process holding the
lock) is reported as such rather than holding the probe.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from gateway.errors import StoreError

if TYPE_CHECKING:
    from gateway.store._sqlite_connection import Body, Connection

T = TypeVar("T")
FileId = tuple[int, int]

WRITE_PROBE_SECONDS = 10.0
WRITE_PROBE_TIMEOUT = 2.0

_PROBE = (
    "INSERT INTO meta (key, value) VALUES ('readiness_probe', ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def file_identity(path: str) -> FileId | None:
    """The opened file's (device, inode); None for a ledger that is not a plain file path."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def file_problem(path: str, opened: FileId) -> str | None:
    """What is wrong with the ledger file at ``path`` (blocks: run it off the loop)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return (
            f"the ledger file {path} was removed while lakegate had it open: runs written now "
            "are lost at the next restart; put the file back (or restore it) and restart lakegate"
        )
    except OSError as exc:
        return f"cannot look at the ledger file {path}: {exc.strerror or exc}"
    if (stat.st_dev, stat.st_ino) != opened:
        return (
            f"the ledger file {path} was replaced while lakegate had it open (another file has "
            "its name now): runs written now go to the old file; restart lakegate to open the "
            "new one, or put the original back"
        )
    folder = os.path.dirname(path) or "."
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the ledger file {path} or its directory is not writable (permissions, or a "
            "read-only filesystem): a restart could not open it; make both writable for lakegate"
        )
    return None


def write_probe(conn: sqlite3.Connection) -> None:
    """One small committed write, fsynced like every other, in the ledger's own meta table."""
    conn.execute(_PROBE, (str(time.time_ns()),))


class WriteProbe:
    """A real write at most every ``every`` seconds, never two at once, waited for at most
    ``timeout`` seconds; between writes, the last one's outcome stands."""

    def __init__(
        self,
        write: Callable[[], Awaitable[None]],
        *,
        every: float = WRITE_PROBE_SECONDS,
        timeout: float = WRITE_PROBE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._every = every
        self._timeout = timeout
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._done_at: float | None = None
        self._error: str | None = None

    async def check(self) -> None:
        now = self._clock()
        if self._task is None and (self._done_at is None or now - self._done_at >= self._every):
            self._task = asyncio.create_task(self._probe(), name="ledger-write-probe")
            self._started_at = now
        task = self._task
        if task is not None:
            remaining = self._timeout - (now - self._started_at)
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(task), remaining)
            except TimeoutError:
                raise StoreError(
                    f"a write to the ledger has not finished in {self._timeout:g} s (a stalled "
                    "disk, or another process holding the ledger's lock)"
                ) from None
        if self._error is not None:
            raise StoreError(f"the ledger cannot be written: {self._error}")

    async def _probe(self) -> None:
        try:
            await self._write()
            self._error = None
        except StoreError as exc:
            self._error = exc.message
        finally:
            self._done_at = self._clock()
            self._task = None


class SqliteHealth:
    """The readiness half of ``SqliteStore``: ``ping`` as described above."""

    _path: str
    _conn: Connection | None
    _write_probe: WriteProbe | None = None
    _probed_conn: Connection | None = None

    async def _run(self, body: Body[T], *, write: bool) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    async def ping(self) -> None:
        conn = self._conn
        if conn is None:
            raise StoreError("the run ledger is not open")
        if conn.file_id is not None:
            problem = await asyncio.to_thread(file_problem, self._path, conn.file_id)
            if problem is not None:
                raise StoreError(problem)
        if self._write_probe is None or self._probed_conn is not conn:
            # A reopened ledger starts with a write of its own.
            self._write_probe = WriteProbe(lambda: self._run(write_probe, write=True))
            self._probed_conn = conn
        await self._write_probe.check()
