"""The ledger under test, once per backend: every contract test runs against each of them.

A PostgreSQL backend joins ``BACKENDS`` (behind the ``postgres`` marker) and must pass the
same tests unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.sqlite import SqliteStore
from tests.store.factories import Ledger

BACKENDS = [pytest.param("sqlite", id="sqlite")]


def _sqlite(tmp_path: Path) -> Callable[[], Store]:
    path = tmp_path / "ledger" / "lakegate.db"
    return lambda: SqliteStore(path)


@pytest.fixture(params=BACKENDS)
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    makers = {"sqlite": _sqlite}
    ledger = Ledger(makers[request.param](tmp_path))
    yield ledger
    await ledger.close_all()


@pytest.fixture
async def store(ledger: Ledger) -> Store:
    return await ledger.open()
