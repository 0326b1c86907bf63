"""The ledger's one thread: its queued jobs taken in batches, the writes in one group commit.

``Worker`` owns a thread and a queue. Whatever jobs are waiting when the thread comes round
are taken at once: the reads run in one deferred transaction, then the writes in one
``BEGIN IMMEDIATE`` transaction, each write inside a SAVEPOINT of its own, and one COMMIT (one
fsync) makes the whole batch durable. A write that raises (QuotaExceeded from the admit
callback, a Conflict, a failed statement) is rolled back to its savepoint and its caller gets
the exception, while the others of its batch commit. No caller hears of a write before the
COMMIT that made it durable; if that COMMIT fails, every write of the batch fails with it and
none was made.

Jobs of one batch were all queued before any of them ran, so none of their callers has seen
another's result: running the reads first and the writes together changes nothing any caller
can tell. Results go back to the event loop in one hand-over per batch, not one per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.errors import StoreError

if TYPE_CHECKING:
    from gateway.store._sqlite_connection import Connection

T = TypeVar("T")
Body = Callable[[sqlite3.Connection], T]

_READ, _WRITE, _CALL = "read", "write", "call"
_SAVEPOINT = "job"


@dataclass
class _Job:
    kind: str
    body: Callable[..., Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = field(default=(False, None))


class Worker:
    """The one thread a ledger's connection lives on, taking its queued jobs in batches."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._queue: queue.SimpleQueue[list[_Job | None]] = queue.SimpleQueue()
        # Jobs queued during the current turn of each loop, handed to the thread together at
        # the end of it: one wake-up of the thread per turn, not one per job.
        self._outgoing: dict[asyncio.AbstractEventLoop, list[_Job | None]] = {}
        self.stopped = False
        self._thread = threading.Thread(target=self._serve, name="lakegate-ledger", daemon=True)
        self._thread.start()

    def submit(self, kind: str, body: Callable[..., Any]) -> asyncio.Future[Any]:
        """Queue ``body``: a read or a write (given the connection) or a call (given nothing)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.stopped:
            future.set_exception(StoreError("the run ledger is not open"))
        else:
            self._send(loop, _Job(kind, body, loop, future))
        return future

    def read(self, body: Body[T]) -> asyncio.Future[T]:
        return self.submit(_READ, body)

    def write(self, body: Body[T]) -> asyncio.Future[T]:
        return self.submit(_WRITE, body)

    def call(self, body: Callable[[], T]) -> asyncio.Future[T]:
        return self.submit(_CALL, body)

    def stop(self) -> None:
        """Let the thread end once the jobs queued before this are done; later ones fail."""
        if not self.stopped:
            self.stopped = True
            self._send(asyncio.get_running_loop(), None)

    def _send(self, loop: asyncio.AbstractEventLoop, job: _Job | None) -> None:
        outgoing = self._outgoing.get(loop)
        if outgoing is None:
            outgoing = self._outgoing[loop] = []
            loop.call_soon(self._flush, loop)
        outgoing.append(job)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._outgoing.pop(loop))

    # --- on the worker's thread -------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            batch = self._queue.get()
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.extend(self._queue.get_nowait())
            # A call (connect, disconnect) and the end run alone, in their place in the order.
            run: list[_Job] = []
            for i, job in enumerate(batch):
                if job is None or job.kind == _CALL:
                    self._batch(run)
                    run = []
                    if job is None:
                        # Nothing should follow the end; whatever did is answered, not lost.
                        late = [j for j in batch[i + 1 :] if j is not None]
                        _fail(late, "the run ledger is not open")
                        _deliver(late)
                        return
                    self._one_call(job)
                else:
                    run.append(job)
            self._batch(run)

    def _one_call(self, job: _Job) -> None:
        if not job.future.cancelled():
            try:
                job.outcome = (True, job.body())
            except BaseException as exc:
                job.outcome = (False, exc)
        _deliver([job])

    def _batch(self, jobs: list[_Job]) -> None:
        # A caller cancelled before its job started never has it run (as with an executor);
        # a cancellation after that leaves the job to finish whole, its result unread.
        live = [job for job in jobs if not job.future.cancelled()]
        for kind in (_READ, _WRITE):
            pending = [job for job in live if job.kind == kind]
            while pending:
                pending = self._transaction(pending, write=kind == _WRITE)
        _deliver(jobs)

    def _transaction(self, jobs: Sequence[_Job], *, write: bool) -> list[_Job]:
        """Run ``jobs`` in one transaction; the ones left to run in a new one, if any."""
        conn = self.conn.raw
        if conn is None:
            _fail(jobs, "the run ledger is not open")
            return []
        try:
            if conn.in_transaction:
                # Left open by a rollback that failed; none of it was committed.
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            _fail(jobs, f"using the run ledger: {type(exc).__name__}: {exc}", exc)
            return []
        for i, job in enumerate(jobs):
            if not _step(conn, job, write):
                # The statement took the whole transaction with it (a full disk, an I/O
                # error): none of the batch's writes is left (reads already answered stand);
                # the rest start afresh.
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                if write:
                    _fail(jobs[:i], "the run ledger rolled back the transaction this was part of")
                return list(jobs[i + 1 :])
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            _fail(jobs, f"committing to the run ledger: {type(exc).__name__}: {exc}", exc)
            return []
        if write:
            self.conn.commits += 1
            self.conn.committed_jobs += sum(1 for job in jobs if job.outcome[0])
        return []


def _step(conn: sqlite3.Connection, job: _Job, write: bool) -> bool:
    """Run one job inside the open transaction; False if the transaction cannot go on."""
    if write:
        try:
            conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        except sqlite3.Error as exc:
            job.outcome = (False, _ours(exc))
            return False
    try:
        job.outcome = (True, job.body(conn))
    except BaseException as exc:
        job.outcome = (False, _ours(exc))
        if not write or not conn.in_transaction:
            return conn.in_transaction
        try:
            conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
        except sqlite3.Error:
            # Its half-done writes could not be undone alone: the batch must not commit.
            return False
    if write:
        try:
            conn.execute(f"RELEASE {_SAVEPOINT}")
        except sqlite3.Error as exc:
            job.outcome = (False, _ours(exc))
            return False
    return True


def _ours(exc: BaseException) -> BaseException:
    if not isinstance(exc, sqlite3.Error):
        return exc
    error = StoreError(f"using the run ledger: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _fail(jobs: Sequence[_Job], message: str, cause: BaseException | None = None) -> None:
    # One exception per caller: each raises it in its own task, with its own traceback.
    for job in jobs:
        error = StoreError(message)
        error.__cause__ = cause
        job.outcome = (False, error)


def _deliver(jobs: Sequence[_Job]) -> None:
    """Hand every outcome to its caller's loop, in one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, mine in by_loop.items():
        # A loop that closed meanwhile has nobody left waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, mine)


def _settle(jobs: Sequence[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        ok, value = job.outcome
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
