"""The ledger under test, once per backend: every contract test runs against each of them.

PostgreSQL joins when ``LAKEGATE_TEST_POSTGRES_DSN`` names a server (``.ci/run`` sets it);
each of its tests gets a schema of its own, made and dropped around it, so tests and
helpers running in parallel on one database never see each other's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from blockbuster import BlockBuster

from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from tests.store.factories import Ledger
from tests.store.pg import (
    POSTGRES_DSN,
    SKIP_REASON,
    allow_asyncpg_config_reads,
    fresh_schema,
    pg_store,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(POSTGRES_DSN is None, reason=SKIP_REASON),
        ],
    ),
]


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite ledger file with every migration applied, closed again: its schema and its
    query plans are what the test reads."""
    path = tmp_path / "lakegate.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    return path


def _sqlite(tmp_path: Path) -> Callable[[], Store]:
    path = tmp_path / "ledger" / "lakegate.db"
    return lambda: SqliteStore(path)


@pytest.fixture(params=BACKENDS)
async def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, blockbuster: BlockBuster
) -> AsyncIterator[Ledger]:
    if request.param == "sqlite":
        ledger = Ledger(_sqlite(tmp_path))
        yield ledger
        await ledger.close_all()
        return
    allow_asyncpg_config_reads(blockbuster)
    async with fresh_schema() as dsn:
        ledger = Ledger(lambda: pg_store(dsn))
        yield ledger
        await ledger.close_all()


@pytest.fixture
async def store(ledger: Ledger) -> Store:
    return await ledger.open()


@pytest.fixture
async def pg_dsn(blockbuster: BlockBuster) -> AsyncIterator[str]:
    """A DSN on a fresh, empty schema of the test server; PostgreSQL-only tests use it."""
    if POSTGRES_DSN is None:
        pytest.skip(SKIP_REASON)
    allow_asyncpg_config_reads(blockbuster)
    async with fresh_schema() as dsn:
        yield dsn
