"""The poller's pace: a long walk waits longer, a restart is caught up at once, and a run's
state in the ledger never lags the emulator by more than the run's poll interval."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.model import RunRecord, RunState
from gateway.runs.ledger import RunLedger
from gateway.runs.poller import MOVES_IN_FLIGHT, Poller
from gateway.settings import QuotaSettings, Settings, TenantDefaults, TenantsSettings
from gateway.store.sqlite import SqliteStore
from tests.runs.conftest import POLLER, Wired
from tests.runs.test_poller import (
    INTO_RUNNING,
    PAST_THE_END,
    Polling,
    calls_to,
    poll_after,
    polling,
)

__all__ = ["polling"]  # the fixture, shared with test_poller

S = RunState
# 60 runs of one group: a walk of three runs/list pages of 25.
RUNS, PAGES = 60, 3
JITTER_LOW = 0.8  # the jitter may shorten a wait by a fifth


@pytest.fixture
def runs_settings() -> Settings:
    """Room for a group of 60 active runs in one namespace, submitted at once."""
    quotas = QuotaSettings(max_active_runs=1000, burst=1000, submissions_per_minute=60_000)
    return Settings(poller=POLLER, tenants=TenantsSettings(defaults=TenantDefaults(quotas=quotas)))


async def submit_many(wired: Wired, n: int) -> list[RunRecord]:
    return [await wired.submit() for _ in range(n)]


async def test_a_walk_of_three_pages_waits_three_shortest_intervals(
    wired: Wired, polling: Polling
) -> None:
    """A 60-run group costs three list pages per poll, and is polled again no sooner than
    3 x 5 s less the jitter: the group spends at most one page per shortest interval."""
    runs = await submit_many(wired, RUNS)
    assert await poll_after(wired, polling) == RUNS
    assert (calls_to(wired, "list"), calls_to(wired, "get")) == (PAGES, 0)
    now = wired.clock.utc()
    waits = {(await wired.ledger.current(r)).next_poll_at for r in runs}
    assert len(waits) == 1  # the group is rescheduled as one
    (at,) = waits
    assert at is not None
    floor = JITTER_LOW * PAGES * POLLER.min_interval_seconds
    assert timedelta(seconds=floor) <= at - now <= timedelta(seconds=POLLER.max_interval_seconds)
    wired.clock.advance(floor - 1)
    assert await polling.poller.tick() == 0


async def test_a_small_group_keeps_the_shortest_interval(wired: Wired, polling: Polling) -> None:
    """A group whose walk is one page is polled again after the shortest interval, as before."""
    runs = await submit_many(wired, 3)
    await poll_after(wired, polling)
    held = await wired.ledger.current(runs[0])
    assert held.next_poll_at is not None
    wait = (held.next_poll_at - wired.clock.utc()).total_seconds()
    # Seconds old, so the age asks no more than the shortest interval either.
    assert JITTER_LOW * POLLER.min_interval_seconds <= wait <= 1.2 * POLLER.min_interval_seconds


async def test_reconcile_makes_every_followed_run_due_at_once(
    wired: Wired, polling: Polling
) -> None:
    """After a restart nothing waits for its next poll: every active run is due now, and the
    first tick refreshes the lot with one walk."""
    runs = await submit_many(wired, RUNS)
    await poll_after(wired, polling)
    lists = calls_to(wired, "list")
    assert await polling.poller.tick() == 0  # all rescheduled into the future
    assert await polling.poller.reconcile() == RUNS
    wired.emulator.advance(INTO_RUNNING)
    assert await polling.poller.tick() == RUNS
    assert calls_to(wired, "list") - lists == PAGES
    assert [(await wired.ledger.current(r)).state for r in runs] == [S.RUNNING] * RUNS


async def test_the_ledger_never_lags_the_emulator_by_more_than_the_poll_interval(
    wired: Wired, polling: Polling
) -> None:
    """Second by second on both clocks: once the emulator runs the group's runs, the ledger
    shows them RUNNING within the interval the poll before chose (three pages: >= 12 s), give
    or take the one-second step at which both are sampled."""
    runs = await submit_many(wired, RUNS)
    identity = polling.submitter.identity
    remote_id = runs[0].databricks_run_id
    assert remote_id is not None
    last_poll, next_poll = wired.clock.utc(), runs[0].next_poll_at
    moved_remote: datetime | None = None
    interval: timedelta | None = None
    for _ in range(120):
        wired.clock.advance(1)
        wired.emulator.advance(1)
        if await polling.poller.tick():
            last_poll, next_poll = (
                wired.clock.utc(),
                (await wired.ledger.current(runs[0])).next_poll_at,
            )
        if moved_remote is None:
            snapshot = await wired.jobs.get(identity.workspace, identity.credential, remote_id)
            if snapshot.status.life_cycle_state == "RUNNING":
                assert next_poll is not None
                moved_remote, interval = wired.clock.utc(), next_poll - last_poll
        if {(await wired.ledger.current(r)).state for r in runs} == {S.RUNNING}:
            break
    else:
        raise AssertionError("the ledger never showed the runs RUNNING")
    assert moved_remote is not None
    assert interval is not None
    assert interval >= timedelta(seconds=JITTER_LOW * PAGES * POLLER.min_interval_seconds)
    assert wired.clock.utc() - moved_remote <= interval + timedelta(seconds=1)


async def test_many_ended_runs_are_read_from_one_completed_walk(
    wired: Wired, polling: Polling
) -> None:
    """60 runs that ended together cost the empty active walk and the completed walk's three
    pages, not 60 runs/get, and each is finished with what the walk said of it."""
    runs = await submit_many(wired, RUNS)
    wired.emulator.advance(PAST_THE_END)
    await poll_after(wired, polling)
    assert (calls_to(wired, "list"), calls_to(wired, "get")) == (1 + PAGES, 0)
    assert [(await wired.ledger.current(r)).state for r in runs] == [S.SUCCEEDED] * RUNS
    assert wired.count("lakegate_run_transitions", state="SUCCEEDED") == RUNS


async def test_a_few_ended_runs_are_asked_one_by_one(wired: Wired, polling: Polling) -> None:
    """Up to a page's worth of ended runs is one runs/get each, after the active walk."""
    runs = await submit_many(wired, 5)
    wired.emulator.advance(PAST_THE_END)
    await poll_after(wired, polling)
    assert (calls_to(wired, "list"), calls_to(wired, "get")) == (1, 5)
    assert {(await wired.ledger.current(r)).state for r in runs} == {S.SUCCEEDED}


async def test_a_restarted_replica_makes_its_predecessors_runs_due(
    wired: Wired, polling: Polling
) -> None:
    """Runs last polled by another replica id (this process before a restart) are due at once
    for the new one too: the lease owner they keep does not fence making them due."""
    runs = await submit_many(wired, RUNS)
    await poll_after(wired, polling)
    successor = Poller(
        store=polling.store,
        ledger=RunLedger(polling.store, wired.metrics, clock=wired.clock.utc, owner="next"),
        jobs=wired.jobs,
        submitter=polling.submitter,
        settings=POLLER,
        metrics=wired.metrics,
        clock=wired.clock.utc,
    )
    assert await successor.reconcile() == RUNS
    wired.emulator.advance(INTO_RUNNING)
    assert await successor.tick() == RUNS
    assert [(await wired.ledger.current(r)).state for r in runs] == [S.RUNNING] * RUNS


class ConcurrencyStore(SqliteStore):
    """The ledger, counting how many run transitions are in flight at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.in_flight = self.most = 0

    async def transition(self, *args: Any, **kwargs: Any) -> RunRecord | None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super().transition(*args, **kwargs)
        finally:
            self.in_flight -= 1


async def test_a_groups_moves_are_written_several_at_once(
    wired: Wired, polling: Polling, tmp_path: Path
) -> None:
    """The 60 runs that moved are written up to MOVES_IN_FLIGHT at a time, not one after
    another, so a ledger that commits concurrent writes together shares its fsyncs."""
    runs = await submit_many(wired, RUNS)
    store = ConcurrencyStore(tmp_path / "ledger.db")
    await store.open()
    try:
        poller = Poller(
            store=store,
            ledger=RunLedger(store, wired.metrics, clock=wired.clock.utc, owner="counting"),
            jobs=wired.jobs,
            submitter=polling.submitter,
            settings=POLLER,
            metrics=wired.metrics,
            clock=wired.clock.utc,
        )
        wired.emulator.advance(INTO_RUNNING)
        wired.clock.advance(10)
        assert await poller.tick() == RUNS
    finally:
        await store.close()
    assert [(await wired.ledger.current(r)).state for r in runs] == [S.RUNNING] * RUNS
    assert 1 < store.most <= MOVES_IN_FLIGHT
