"""The admission pass reads counts first, and heads only of namespaces that could admit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.ledger import RunLedger
from gateway.runs.queue import Admitter
from gateway.settings import TenantsSettings
from gateway.store.sqlite import SqliteStore
from gateway.store.usage import EVERY_USAGE, UsageNeeds
from tests.store.factories import NOW, new_run

S = RunState


class CountingStore(SqliteStore):
    """The ledger, noting whose heads each pass read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.heads_read: list[set[str]] = []
        self.promotion_needs: list[UsageNeeds] = []

    async def claim_queued_heads(
        self, namespaces: Collection[str], per_namespace: int, now: datetime, **lease: Any
    ) -> list[RunRecord]:
        self.heads_read.append(set(namespaces))
        return await super().claim_queued_heads(namespaces, per_namespace, now, **lease)

    async def promote_queued(
        self, run_id: int, now: datetime, *, needs: UsageNeeds = EVERY_USAGE, **what: Any
    ) -> RunRecord | None:
        self.promotion_needs.append(needs)
        return await super().promote_queued(run_id, now, needs=needs, **what)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(tmp_path / "ledger.db")
    await store.open()
    yield store
    await store.close()


def admitter(store: CountingStore) -> Admitter:
    tenants = TenantsSettings.model_validate({"defaults": {"quotas": {"max_active_runs": 1}}})
    ledger = RunLedger(store=store, metrics=Metrics(), clock=lambda: NOW)
    return Admitter(
        store=store, ledger=ledger, tenants=lambda: tenants,
        caps=WorkspaceCaps(dict), metrics=Metrics(), clock=lambda: NOW,
    )  # fmt: skip


async def test_a_pass_where_nothing_fits_reads_no_heads(store: CountingStore) -> None:
    """Both namespaces at max_active_runs: the pass stops at the counts."""
    for ns in ("team-a", "team-b"):
        await store.create_run(new_run(ns), NOW)
        await store.create_run(new_run(ns, state=S.QUEUED), NOW)
    assert await admitter(store).tick() == 0
    assert store.heads_read == [set()]


async def test_a_pass_reads_the_heads_of_namespaces_with_room_only(store: CountingStore) -> None:
    """team-a is full, team-b has room: only team-b's heads are read, and its run admitted."""
    await store.create_run(new_run("team-a"), NOW)
    await store.create_run(new_run("team-a", state=S.QUEUED), NOW)
    waiting, _ = await store.create_run(new_run("team-b", state=S.QUEUED), NOW)
    assert await admitter(store).tick() == 1
    assert store.heads_read == [{"team-b"}]
    admitted = await store.get_run("team-b", waiting.id)
    assert admitted is not None
    assert admitted.state is S.SUBMITTING
    # The promotion read what still_fits looks at: no rate window, no mean, no uncapped
    # workspace's count.
    assert store.promotion_needs == [
        UsageNeeds(run_hours=False, mean_run=False, recent=False, workspace_active=False)
    ]
