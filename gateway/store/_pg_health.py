"""Whether the PostgreSQL ledger is still the one opened, and whether it still takes a write.

``SELECT 1`` answers from a read-only standby, and from a database restored from another
ledger's backup, and neither must take runs: so ``ping`` reads the installation id (the same
ledger), asks whether its transaction could write (not a standby, not a read-only default),
all within ``PING_TIMEOUT``, so a server that hangs rather than refuses is reported as such.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from gateway.errors import StoreError
from gateway.store._pg_connection import RETRY_AFTER_SECONDS, Body, Conn
from gateway.store.errors import StoreUnavailable

T = TypeVar("T")

PING_TIMEOUT = 2.0


class PostgresHealth:
    """The readiness half of ``PostgresStore``: ``ping`` as described above."""

    _installation_id: str | None

    async def _run(
        self, body: Body[T], *, write: bool, snapshot: bool = False
    ) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    async def ping(self) -> None:
        opened = self._installation_id
        if opened is None:
            raise StoreError("the run ledger is not open")

        async def body(conn: Conn) -> tuple[str | None, str]:
            found = await conn.fetchval("SELECT value FROM meta WHERE key = 'installation_id'")
            read_only = await conn.fetchval("SELECT current_setting('transaction_read_only')")
            return found, str(read_only)

        try:
            found, read_only = await asyncio.wait_for(self._run(body, write=True), PING_TIMEOUT)
        except TimeoutError:
            raise StoreUnavailable(
                f"the PostgreSQL ledger has not answered in {PING_TIMEOUT:g} s",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        if found != opened:
            raise StoreError(
                "the PostgreSQL ledger is not the one lakegate opened (its installation id "
                "changed: a restore from another ledger, or the DSN now points elsewhere); "
                "restart lakegate once the right database is back"
            )
        if read_only == "on":
            raise StoreError(
                "the PostgreSQL ledger does not take writes (a read-only standby, or "
                "default_transaction_read_only): point the DSN at the primary"
            )
