"""The ledger's commits on /metrics: what group commit saves is visible from outside."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import Overrides, create_app
from gateway.appkeys import METRICS, STORE
from gateway.model import RunState
from gateway.store.sqlite import SqliteStore
from tests.store.factories import NOW, new_run
from tests.store.test_sqlite_batch import Gate
from tests.test_app import settings_for


def scraped(text: bytes) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name.startswith(("lakegate_ledger_commits", "lakegate_ledger_writes"))
    }


async def test_the_ledger_reports_commits_and_the_writes_they_carried(tmp_path: Path) -> None:
    """Eight writes queued together are one commit: the scrape says 8 writes over 1 commit
    more, as the store counts them; once the ledger closes, the family goes with it."""
    app = create_app(settings_for(tmp_path), Overrides(run_poller=False))
    async with TestClient(TestServer(app)):
        store = app[STORE]
        assert isinstance(store, SqliteStore)
        before = scraped(app[METRICS].render())
        assert store._worker is not None
        gate = Gate(store._worker)
        calls = [
            asyncio.ensure_future(
                store.create_run(new_run(key=f"k{i}"), NOW, admit=lambda _u: RunState.SUBMITTING)
            )
            for i in range(8)
        ]
        await asyncio.sleep(0)
        await gate.open()
        await asyncio.gather(*calls)
        after = scraped(app[METRICS].render())
        commits, writes = store.commits
        assert after == {
            "lakegate_ledger_commits_total": commits,
            "lakegate_ledger_writes_total": writes,
        }
        assert after["lakegate_ledger_commits_total"] - before["lakegate_ledger_commits_total"] == 1
        assert after["lakegate_ledger_writes_total"] - before["lakegate_ledger_writes_total"] == 8
    assert scraped(app[METRICS].render()) == {}
