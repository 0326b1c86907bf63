"""PostgreSQL for tests: the server named by ``LAKEGATE_TEST_POSTGRES_DSN``, a schema per test.

Without the variable every PostgreSQL test skips, saying how to run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from blockbuster import BlockBuster

from gateway.store.postgres import PoolSettings, PostgresStore

POSTGRES_DSN = os.environ.get("LAKEGATE_TEST_POSTGRES_DSN") or None
SKIP_REASON = (
    "set LAKEGATE_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test to run the "
    "PostgreSQL tests (.ci/run does, and starts the server)"
)


def with_schema(dsn: str, schema: str) -> str:
    """``dsn`` whose connections live in ``schema`` (asyncpg passes search_path to the server)."""
    parts = urlsplit(dsn)
    query = [
        (k, v) for k, v in parse_qsl(parts.query) if k not in ("search_path", "application_name")
    ]
    # The application name finds the schema's connections in pg_stat_activity, to kill them.
    query += [("search_path", schema), ("application_name", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def pg_store(dsn: str, *, max_size: int = 4) -> PostgresStore:
    return PostgresStore(PoolSettings(dsn=dsn, min_size=1, max_size=max_size))


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema for one test; the DSN that uses it. Dropped afterwards."""
    assert POSTGRES_DSN is not None, SKIP_REASON
    schema = f"lgtest_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield with_schema(POSTGRES_DSN, schema)
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


def allow_asyncpg_config_reads(bb: BlockBuster) -> None:
    """Let asyncpg read its connection files (~/.pgpass, ~/.postgresql/*) while connecting.

    It looks for them on the loop each time it opens a connection, which the pool does at
    start and after a connection is lost: a stat or two, local and bounded, and not ours.
    Nothing else in asyncpg, and nothing of lakegate's, is let off.
    """
    for function in bb.functions.values():
        function.can_block_in("asyncpg/connect_utils.py", {"_parse_connect_dsn_and_args"})


async def terminate_connections(dsn: str) -> int:
    """Kill, from an admin connection, every server connection of the ledger at ``dsn``."""
    assert POSTGRES_DSN is not None, SKIP_REASON
    name = dict(parse_qsl(urlsplit(dsn).query))["application_name"]
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND pid <> pg_backend_pid()",
            name,
        )
        return int(killed)
    finally:
        await admin.close()


class OutageProxy:
    """A TCP relay on loopback in front of the test server, to take "the database" away.

    The server is shared with other tests and people, so it is never stopped: ``cut`` closes
    the relay's listener and every relayed connection (what a restarting or failing-over
    server looks like to a client), and ``restore`` listens again on the same port.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def dsn(self, dsn: str) -> str:
        """``dsn`` pointed at the relay instead of the server."""
        parts = urlsplit(dsn)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()
