"""The PostgreSQL ledger's connection pool, its transactions, and the one place where asyncpg's
exceptions become ours.

Every Store method is one transaction on one pooled connection. Writes run READ COMMITTED and
take the row or advisory locks they need, so each statement sees what other replicas have
committed by then; reads of several statements run REPEATABLE READ, READ ONLY, so the rows and
the history they return are one snapshot (a read of one statement is one already).

A connection the server dropped (a restart, ``pg_terminate_backend``, a failover) fails the
operation it was serving with ``StoreUnavailable`` and leaves the pool, which connects again
on the next acquire: the store heals by itself once the server is back. (Opening one, asyncpg
looks for ~/.pgpass and ~/.postgresql/* on the loop: a few stats, at start and after a loss.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway import jsonexact
from gateway.errors import StoreError
from gateway.store.errors import StoreUnavailable

T = TypeVar("T")
# Every connection the store uses comes from its pool. (Only the stubs' proxy is generic.)
if TYPE_CHECKING:
    Conn = PoolConnectionProxy[asyncpg.Record]
else:
    Conn = PoolConnectionProxy
Body = Callable[[Conn], Awaitable[T]]

# Seconds a caller is told to wait before trying again while the database is away.
RETRY_AFTER_SECONDS = 2.0

# Failures of the link rather than of a statement: the server went away or cannot be reached.
# (An InternalClientError is what a connection whose link broke mid-operation answers next.)
_LINK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How the store connects: a DSN (its password is a secret) and the pool's bounds."""

    dsn: str
    min_size: int = 1
    max_size: int = 10
    connect_timeout: float = 5.0
    command_timeout: float = 30.0


def dumps(value: Any) -> str:
    """Compact JSON; NaN and non-JSON values raise ValueError or TypeError."""
    return jsonexact.dumps(value)


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # jsonb in and out as Python values, read by jsonexact (json.loads' values, by orjson
    # where that is the same): asyncpg decodes every jsonb column of every row it reads, a
    # run's spec included.
    await conn.set_type_codec("jsonb", encoder=dumps, decoder=jsonexact.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Nothing to undo when a connection goes back to the pool: the store's advisory locks are
    transaction-scoped and it never LISTENs or SETs, so asyncpg's default reset query (one
    more round trip per operation) is skipped. asyncpg still rolls back a transaction that a
    cancelled caller left open."""


async def create_pool(settings: PoolSettings) -> asyncpg.Pool:
    """A connected pool; ``StoreUnavailable`` when the server cannot be reached."""
    with translated("connecting to the PostgreSQL ledger"):
        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=settings.min_size,
            max_size=settings.max_size,
            timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
            init=_init_connection,
            reset=_keep_session,
            # The session's default, not a SET: times come back in UTC whatever the server's.
            server_settings={"timezone": "UTC"},
        )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


@contextlib.contextmanager
def translated(doing: str) -> Iterator[None]:
    """The one place where asyncpg's and the socket's exceptions become ours."""
    try:
        yield
    except (asyncpg.InterfaceError, asyncpg.UnsupportedServerFeatureError) as exc:
        if isinstance(exc, ValueError | asyncpg.UnsupportedServerFeatureError):
            # What waiting will not mend: a DSN asyncpg refuses, a value it cannot send, a
            # server it cannot use.
            raise StoreError(f"{doing}: {type(exc).__name__}: {exc}") from exc
        # Any other: the connection closed under the operation.
        raise _unavailable(doing, exc) from exc
    except _LINK_ERRORS as exc:
        raise _unavailable(doing, exc) from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"{doing}: {type(exc).__name__}: {exc}") from exc


def _unavailable(doing: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"{doing}: the database cannot be reached ({_why(exc)})", retry_after=RETRY_AFTER_SECONDS
    )


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.asynccontextmanager
async def acquired(pool: asyncpg.Pool, wait_seconds: float) -> AsyncIterator[Conn]:
    """A pooled connection, waited for at most ``wait_seconds``."""
    try:
        conn = await pool.acquire(timeout=wait_seconds)
    except TimeoutError as exc:
        raise StoreUnavailable(
            f"no connection to the PostgreSQL ledger within {wait_seconds:g} s (the pool is "
            "exhausted or the server does not answer)",
            retry_after=RETRY_AFTER_SECONDS,
        ) from exc
    try:
        yield conn
    finally:
        # Shielded: a cancelled caller must not leak the connection out of the pool.
        await asyncio.shield(pool.release(conn))


async def in_transaction(
    pool: asyncpg.Pool, wait_seconds: float, body: Body[T], *, write: bool, snapshot: bool
) -> T:
    """Run ``body`` on a pooled connection and return what it returns: in one transaction for
    a write or a read of several statements (``snapshot``); a read of one statement is its own
    snapshot already, and skips BEGIN and COMMIT."""
    with translated("using the PostgreSQL ledger"):
        async with acquired(pool, wait_seconds) as conn:
            if not write and not snapshot:
                return await body(conn)
            if write:
                transaction = conn.transaction(isolation="read_committed")
            else:
                transaction = conn.transaction(isolation="repeatable_read", readonly=True)
            async with transaction:
                return await body(conn)
