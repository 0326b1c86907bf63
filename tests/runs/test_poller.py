"""The poller for real: a SQLite ledger, the emulator, and a fake of the submitter protocol."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.errors import KubernetesError, LakegateError
from gateway.identity.resolver import ResolvedIdentity
from gateway.model import RunRecord, RunState
from gateway.runs.poller import Poller
from gateway.runs.specs import RUN_COMPLETED
from gateway.runs.types import RunSubmitter
from gateway.store.sqlite import SqliteStore
from tests.runs.conftest import POLLER, Wired, new_run

S = RunState
# The emulator holds a run PENDING for 10 s, RUNNING for 60 s, TERMINATING for 5 s.
INTO_RUNNING, PAST_THE_END = 15, 100


@dataclass
class FakeSubmitter:
    """A ``RunSubmitter`` that records what the poller asks of it and does nothing remote.

    ``identity`` is what every run is followed with; ``outage``, when set, is raised instead.
    """

    identity: ResolvedIdentity
    outage: LakegateError | None = None
    submitted: list[tuple[int, float]] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)

    async def identity_of(self, run: RunRecord) -> ResolvedIdentity:
        if self.outage is not None:
            raise self.outage
        return self.identity

    async def submit_remote(
        self, run: RunRecord, identity: ResolvedIdentity | None = None, *, deadline: float
    ) -> RunRecord:
        self.submitted.append((run.id, deadline))
        return run

    async def cancel_remote(self, run: RunRecord) -> None:
        self.cancelled.append(run.id)

    async def give_up_submitting(self, run: RunRecord, reason: str) -> RunRecord | None:
        self.given_up.append(run.id)
        return None


class CountingStore(SqliteStore):
    """The ledger through a second connection that counts the reads the poller makes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: Counter[str] = Counter()

    async def list_runs(self, *args: object, **kwargs: object) -> list[RunRecord]:
        self.reads["list_runs"] += 1
        return await super().list_runs(*args, **kwargs)  # type: ignore[arg-type]

    async def claim_group(
        self, namespace: str, identity_ref: Mapping[str, str], now: datetime, **lease: Any
    ) -> list[RunRecord]:
        self.reads["claim_group"] += 1
        return await super().claim_group(namespace, identity_ref, now, **lease)


@dataclass
class Polling:
    poller: Poller
    submitter: FakeSubmitter
    store: CountingStore


@pytest.fixture
async def polling(wired: Wired, tmp_path: Path) -> AsyncIterator[Polling]:
    store = CountingStore(tmp_path / "ledger.db")
    await store.open()
    submitter = FakeSubmitter(await wired.identities.resolve("team-a"))
    fake: RunSubmitter = submitter  # the poller needs nothing more than the protocol
    poller = Poller(
        store=store,
        ledger=wired.ledger,
        jobs=wired.jobs,
        submitter=fake,
        settings=POLLER,
        metrics=wired.metrics,
        clock=wired.clock.utc,
        rng=random.Random(7),
    )
    yield Polling(poller, submitter, store)
    await store.close()


def calls_to(wired: Wired, endpoint: str) -> int:
    return sum(
        r["count"]
        for r in wired.emulator.stats()["requests"]
        if r["path"] == f"/api/{{version}}/jobs/runs/{endpoint}"
    )


async def poll_after(wired: Wired, polling: Polling, *, seconds: float = 10) -> int:
    """Let ``seconds`` pass on the gateway's clock (runs come due), then tick once."""
    wired.clock.advance(seconds)
    return await polling.poller.tick()


async def test_a_group_is_read_with_one_group_query(wired: Wired, polling: Polling) -> None:
    """The group's runs come from one claim of the group, never from listing the namespace."""
    for _ in range(3):
        await wired.submit()
    assert await poll_after(wired, polling) == 3
    assert polling.store.reads == {"claim_group": 1}


async def test_a_group_of_three_is_refreshed_by_one_list_walk(
    wired: Wired, polling: Polling
) -> None:
    """Three active runs cost one runs/list and no runs/get; each move is recorded."""
    runs = [await wired.submit() for _ in range(3)]
    wired.emulator.advance(INTO_RUNNING)
    await poll_after(wired, polling)
    assert (calls_to(wired, "list"), calls_to(wired, "get")) == (1, 0)
    assert [(await wired.ledger.current(r)).state for r in runs] == [S.RUNNING] * 3
    assert wired.count("lakegate_run_transitions", state="RUNNING") == 3


async def test_a_small_group_is_asked_run_by_run(wired: Wired, polling: Polling) -> None:
    """Below the list threshold each run is one runs/get and no list walk."""
    await wired.submit()
    await poll_after(wired, polling)
    assert (calls_to(wired, "list"), calls_to(wired, "get")) == (0, 1)


async def test_a_run_that_ended_is_finished_once(wired: Wired, polling: Polling) -> None:
    """An ended run is written SUCCEEDED with one event, one count and one log, then left."""
    run = await wired.submit()
    wired.emulator.advance(PAST_THE_END)
    with capture_logs() as logs:
        await poll_after(wired, polling)
        assert await poll_after(wired, polling, seconds=600) == 0
    assert (await wired.ledger.current(run)).state is S.SUCCEEDED
    assert [e["type"] for e in await wired.outbox(run)] == [RUN_COMPLETED]
    assert wired.count("lakegate_run_transitions", state="SUCCEEDED") == 1
    assert [e["run_id"] for e in logs if e["event"] == "run_finished"] == [run.id]


async def test_runs_whose_state_held_are_polled_again_later(wired: Wired, polling: Polling) -> None:
    """Runs still PENDING at Databricks stay PENDING and are next due within the intervals."""
    runs = [await wired.submit() for _ in range(2)]
    await poll_after(wired, polling)
    now = wired.clock.utc()
    for run in runs:
        held = await wired.ledger.current(run)
        assert held.state is S.PENDING
        assert held.next_poll_at is not None
        assert timedelta(seconds=5) <= held.next_poll_at - now <= timedelta(seconds=60)
    assert await polling.poller.tick() == 0


async def test_a_run_databricks_forgot_ends_as_an_internal_error(
    wired: Wired, polling: Polling
) -> None:
    """A run id Databricks does not know (it deletes old runs) ends INTERNAL_ERROR, once."""
    run, _ = await wired.ledger.accept(new_run())
    await wired.ledger.record_submission(
        run, remote_id=424_242, host=wired.emulator.url, first_poll_in=5
    )
    await poll_after(wired, polling)
    ended = await wired.ledger.current(run)
    assert (ended.state, ended.state_message) == (
        S.INTERNAL_ERROR,
        "Databricks no longer knows this run",
    )
    assert len(await wired.outbox(run)) == 1


async def test_a_cancel_requested_is_carried_out_through_the_submitter(
    wired: Wired, polling: Polling
) -> None:
    """A flagged run Databricks still runs is cancelled by the submitter, on the next tick."""
    run = await wired.submit()
    await wired.ledger.request_cancel("team-a", run.id)
    assert await polling.poller.tick() == 1
    assert polling.submitter.cancelled == [run.id]


async def test_a_submitting_run_is_submitted_again_through_the_submitter(
    wired: Wired, polling: Polling
) -> None:
    """A due SUBMITTING run goes back to the submitter, with the background deadline."""
    run, _ = await wired.ledger.accept(new_run(next_poll_at=wired.clock.utc()))
    assert await polling.poller.tick() == 1
    assert polling.submitter.submitted == [(run.id, 30.0)]
    assert polling.submitter.given_up == []


async def test_a_submission_past_its_deadline_is_given_up(wired: Wired, polling: Polling) -> None:
    """A run still SUBMITTING after submit_deadline_seconds is given up, not sent again."""
    run, _ = await wired.ledger.accept(new_run(next_poll_at=wired.clock.utc()))
    await poll_after(wired, polling, seconds=POLLER.submit_deadline_seconds + 1)
    assert polling.submitter.given_up == [run.id]
    assert polling.submitter.submitted == []


async def test_a_group_without_an_identity_is_postponed(wired: Wired, polling: Polling) -> None:
    """With no identity to be had the group waits one to two intervals, and says why."""
    run = await wired.submit()
    polling.submitter.outage = KubernetesError("connection refused")
    await poll_after(wired, polling)
    postponed = await wired.ledger.current(run)
    assert postponed.state is S.PENDING
    assert postponed.state_message == "identity unavailable: connection refused"
    assert postponed.next_poll_at is not None
    wait = postponed.next_poll_at - wired.clock.utc()
    assert timedelta(seconds=5) <= wait < timedelta(seconds=10)
    assert calls_to(wired, "get") == 0


async def test_reconcile_makes_every_submitting_run_due_at_once(
    wired: Wired, polling: Polling
) -> None:
    """At start-up SUBMITTING runs, however far off their next try, are due now."""
    later = wired.clock.utc() + timedelta(hours=1)
    runs = [(await wired.ledger.accept(new_run(next_poll_at=later)))[0] for _ in range(2)]
    assert await polling.poller.reconcile() == 2
    assert await polling.poller.tick() == 2
    assert sorted(run_id for run_id, _ in polling.submitter.submitted) == [r.id for r in runs]
