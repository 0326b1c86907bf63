"""The ledger's readiness probe (issue 9): a ledger file removed, replaced or unwritable under
the running store, or a write that cannot finish, makes ``ping`` fail naming the cause; putting
things right makes it pass again."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import StoreError
from gateway.store._sqlite_health import WriteProbe
from gateway.store.sqlite import SqliteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "lakegate.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path)
    await store.open()
    yield store
    await store.close()


async def test_an_open_ledger_passes_and_is_really_written(store: SqliteStore, path: Path) -> None:
    """The probe's write is committed to the file on disk, where another reader sees it."""
    await store.ping()

    def probed() -> str:
        with sqlite3.connect(path) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'readiness_probe'").fetchone()
        return str(row[0])

    assert (await asyncio.to_thread(probed)).isdigit()


async def test_a_removed_ledger_file_fails_until_it_is_back(store: SqliteStore, path: Path) -> None:
    """Moved away, the file is 'removed' for the store; moved back, the store is ready."""
    aside = path.with_suffix(".aside")
    os.rename(path, aside)
    with pytest.raises(StoreError, match="was removed while lakegate had it open"):
        await store.ping()
    os.rename(aside, path)
    await store.ping()


async def test_a_replaced_ledger_file_fails_until_the_original_is_back(
    store: SqliteStore, path: Path
) -> None:
    """Another file under the ledger's name (a copy, a restore) is not the open ledger."""
    aside = path.with_suffix(".aside")
    os.rename(path, aside)
    shutil.copyfile(aside, path)
    with pytest.raises(StoreError, match="was replaced while lakegate had it open") as caught:
        await store.ping()
    assert str(path) in caught.value.message
    os.replace(aside, path)
    await store.ping()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a file whatever its mode")
async def test_a_read_only_ledger_fails_until_it_is_writable(
    store: SqliteStore, path: Path
) -> None:
    """A ledger the process could not open again after a restart is not ready."""
    os.chmod(path, 0o444)
    try:
        with pytest.raises(StoreError, match="not writable"):
            await store.ping()
    finally:
        os.chmod(path, 0o644)
    await store.ping()


async def test_a_ledger_that_cannot_take_a_write_fails_until_it_can(path: Path) -> None:
    """Another process holding the ledger's write lock: the probe's real write cannot finish,
    and the probe says so within its own bound; once the lock is gone the write lands."""
    store = SqliteStore(path, busy_timeout=0.2)
    await store.open()
    other = await asyncio.to_thread(
        sqlite3.connect, path, isolation_level=None, check_same_thread=False
    )
    try:
        await asyncio.to_thread(other.execute, "BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=r"cannot be written: .*locked"):
            await store.ping()
        await asyncio.to_thread(other.execute, "ROLLBACK")
        # The failure stands until the next probe is due; a fresh store probes at once.
        await store.close()
        await store.open()
        await store.ping()
    finally:
        await asyncio.to_thread(other.close)
        await store.close()


async def settle() -> None:
    """Let the tasks that are ready run (the probe's write and what awaits it)."""
    for _ in range(5):
        await asyncio.sleep(0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_write_probe_is_rate_limited_and_bounded() -> None:
    """One write per interval however often /readyz asks; a write that hangs is reported after
    the timeout without a second one being started; its late outcome then stands."""
    writes: list[asyncio.Event] = []

    async def write() -> None:
        done = asyncio.Event()
        writes.append(done)
        await done.wait()

    clock = Clock()
    probe = WriteProbe(write, every=10.0, timeout=0.05, clock=clock)
    with pytest.raises(StoreError, match=r"has not finished in 0\.05 s"):
        await probe.check()
    clock.now = 20.0
    with pytest.raises(StoreError, match="has not finished"):
        await probe.check()
    assert len(writes) == 1
    writes[0].set()
    await settle()
    clock.now = 25.0
    await probe.check()
    assert len(writes) == 1
    clock.now = 40.0
    checking = asyncio.create_task(probe.check())
    await settle()
    assert len(writes) == 2
    writes[1].set()
    await checking
