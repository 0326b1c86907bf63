"""The poller's loop outlives a failing tick."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from gateway.metrics import Metrics
from gateway.runs.leases import Claims
from gateway.runs.poller import Poller
from gateway.settings import PollerSettings


class CrashingStore:
    """Answers reconcile's due_runs with nothing, the first claim with a bug, then no work."""

    def __init__(self) -> None:
        self.calls = 0
        self.second_call = asyncio.Event()

    async def due_runs(self, now: datetime, *, states: Any, limit: int) -> list[Any]:
        return []  # reconcile() at start-up

    async def claim_due_runs(self, now: datetime, **claim: Any) -> list[Any]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in a tick")
        self.second_call.set()
        return []


async def test_a_crashing_tick_does_not_stop_the_poller() -> None:
    """After an unexpected exception the loop logs it, pauses, and polls again."""
    store = CrashingStore()
    poller = Poller(
        store=store,  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        jobs=None,  # type: ignore[arg-type]
        submitter=None,  # type: ignore[arg-type]
        settings=PollerSettings(min_interval_seconds=0.01, max_interval_seconds=0.01),
        metrics=Metrics(),
        claims=Claims(store, "replica-1"),  # type: ignore[arg-type]
        idle_seconds=0.01,
    )
    task = asyncio.create_task(poller.run_forever())
    try:
        await asyncio.wait_for(store.second_call.wait(), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert store.calls >= 2
