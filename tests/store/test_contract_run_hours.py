"""Store contract: run time for quotas.run_hours_per_day (usage.run_seconds, run_spans)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.model import NamespaceUsage, RunState
from gateway.store import Store
from gateway.store.base import UsageNeeds
from tests.store.factories import NOW, at, new_run

S = RunState
DAY = 86_400


async def test_a_run_counts_from_submitting_to_its_end_not_while_queued(store: Store) -> None:
    """Queued 40 s, admitted, ended 50 s later: 50 s; an active run counts up to now."""
    waited, _ = await store.create_run(new_run(state=S.QUEUED), at(-100))
    await store.transition(waited.id, S.SUBMITTING, expected={S.QUEUED}, now=at(-60))
    await store.transition(waited.id, S.SUCCEEDED, expected={S.SUBMITTING}, now=at(-10))
    await store.create_run(new_run(), at(-30))
    usage = await store.usage("team-a", "adb-123", NOW)
    assert usage.run_seconds == pytest.approx(80.0)
    assert await store.run_spans("team-a", NOW) == [(at(-60), at(-10)), (at(-30), None)]


async def test_a_queued_run_cancelled_counts_nothing(store: Store) -> None:
    """A run that never left the queue never held a slot."""
    run, _ = await store.create_run(new_run(state=S.QUEUED), at(-100))
    await store.transition(run.id, S.CANCELED, expected={S.QUEUED}, now=at(-1))
    assert (await store.usage("team-a", "adb-123", NOW)).run_seconds == 0.0
    assert await store.run_spans("team-a", NOW) == []


async def test_the_window_is_the_last_day(store: Store) -> None:
    """A run that ended over a day ago is out; one across the window's start counts its part."""
    old, _ = await store.create_run(new_run(), at(-DAY - 200))
    await store.transition(old.id, S.FAILED, expected={S.SUBMITTING}, now=at(-DAY - 100))
    across, _ = await store.create_run(new_run(), at(-DAY - 3600))
    await store.transition(across.id, S.SUCCEEDED, expected={S.SUBMITTING}, now=at(-DAY + 60))
    assert (await store.usage("team-a", "adb-123", NOW)).run_seconds == pytest.approx(60.0)
    assert await store.run_spans("team-a", NOW) == [(at(-DAY - 3600), at(-DAY + 60))]


async def test_run_seconds_of_several_namespaces(store: Store) -> None:
    """run_seconds answers each namespace asked, 0.0 for one without runs, others apart."""
    await store.create_run(new_run("team-a"), at(-10))
    await store.create_run(new_run("team-b"), at(-20))
    await store.create_run(new_run("team-b"), at(-5))
    assert await store.run_seconds(["team-a", "team-b", "team-c"], NOW) == {
        "team-a": pytest.approx(10.0),
        "team-b": pytest.approx(25.0),
        "team-c": 0.0,
    }
    later = NOW + timedelta(seconds=10)
    assert (await store.run_seconds(["team-a"], later))["team-a"] == pytest.approx(20.0)


async def test_an_admission_that_needs_no_run_hours_is_not_given_them(store: Store) -> None:
    """create_run reads the day's run time for ``admit`` only when its needs say so; the
    other usage figures are the same either way."""
    await store.create_run(new_run(), at(-30))
    seen: list[NamespaceUsage] = []

    def admit(usage: NamespaceUsage) -> RunState:
        seen.append(usage)
        return S.SUBMITTING

    await store.create_run(new_run(), NOW, admit=admit)
    await store.create_run(new_run(), NOW, admit=admit, needs=UsageNeeds(run_hours=False))
    full, lean = seen
    assert (full.run_seconds, lean.run_seconds) == (pytest.approx(30.0), 0.0)
    assert (lean.active, lean.recent_submissions) == (
        full.active + 1,
        (NOW, *full.recent_submissions),
    )
