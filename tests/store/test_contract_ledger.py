"""Store contract: due work, cancellation, counts, outbox listing, and the ledger's lifetime."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway.errors import StoreError
from gateway.model import RunState
from gateway.store import Store
from tests.store.factories import NOW, Ledger, at, new_run

S = RunState
LIVE = frozenset({S.PENDING, S.RUNNING, S.TERMINATING})


async def test_due_runs_are_the_overdue_ones_most_overdue_first(store: Store) -> None:
    """due_runs returns runs polled at or before now, in the given states, oldest poll first."""
    late, _ = await store.create_run(new_run(next_poll_at=at(5)), NOW)
    later, _ = await store.create_run(new_run(next_poll_at=at(1)), NOW)
    exact, _ = await store.create_run(new_run(next_poll_at=at(10)), NOW)
    await store.create_run(new_run(next_poll_at=at(11)), NOW)
    await store.create_run(new_run(state=S.QUEUED, next_poll_at=at(0)), NOW)
    due = await store.due_runs(at(10), states={S.SUBMITTING}, limit=10)
    assert [run.id for run in due] == [later.id, late.id, exact.id]


async def test_due_runs_span_namespaces_and_respect_the_limit(store: Store) -> None:
    """The poller sees every namespace's due runs, at most ``limit`` of them."""
    for namespace in ("team-a", "team-b", "team-c"):
        await store.create_run(new_run(namespace, next_poll_at=NOW), NOW)
    due = await store.due_runs(at(1), states={S.SUBMITTING}, limit=2)
    assert len(due) == 2
    assert len({run.namespace for run in due}) == 2


async def test_runs_without_a_poll_time_are_never_due(store: Store) -> None:
    """A run with no next_poll_at never appears in due_runs."""
    await store.create_run(new_run(next_poll_at=None), NOW)
    assert await store.due_runs(at(10**6), states=set(RunState), limit=10) == []


async def test_poll_time_moves_a_run_out_of_due(store: Store) -> None:
    """After the poller sets a later next_poll_at, the run is no longer due until then."""
    run, _ = await store.create_run(new_run(next_poll_at=NOW), NOW)
    await store.update_run(run.id, now=at(1), next_poll_at=at(30))
    assert await store.due_runs(at(29), states={S.SUBMITTING}, limit=10) == []
    assert len(await store.due_runs(at(30), states={S.SUBMITTING}, limit=10)) == 1


async def test_request_cancel_flags_the_run_and_makes_it_due(store: Store) -> None:
    """A cancel request sets cancel_requested and next_poll_at to now."""
    run, _ = await store.create_run(new_run(next_poll_at=at(600)), NOW)
    flagged = await store.request_cancel("team-a", run.id, at(5))
    assert flagged is not None
    assert (flagged.cancel_requested, flagged.next_poll_at, flagged.state) == (
        True,
        at(5),
        S.SUBMITTING,
    )
    assert [r.id for r in await store.due_runs(at(5), states={S.SUBMITTING}, limit=5)] == [run.id]


async def test_request_cancel_is_scoped_to_its_namespace(store: Store) -> None:
    """Another namespace cannot cancel a run: None, and the run is untouched."""
    run, _ = await store.create_run(new_run("team-a"), NOW)
    assert await store.request_cancel("team-b", run.id, at(1)) is None
    got = await store.get_run_by_id(run.id)
    assert got is not None
    assert not got.cancel_requested


async def test_request_cancel_of_an_ended_run_changes_nothing(store: Store) -> None:
    """Cancelling a finished run returns it unchanged."""
    run, _ = await store.create_run(new_run(), NOW)
    ended = await store.transition(run.id, S.SUCCEEDED, expected={S.SUBMITTING}, now=at(1))
    assert await store.request_cancel("team-a", run.id, at(2)) == ended


async def test_repeated_cancel_requests_do_not_hurry_the_poller(store: Store) -> None:
    """Only the first request makes the run due; later ones leave next_poll_at alone."""
    run, _ = await store.create_run(new_run(), NOW)
    await store.request_cancel("team-a", run.id, at(1))
    await store.update_run(run.id, now=at(2), next_poll_at=at(60))
    again = await store.request_cancel("team-a", run.id, at(3))
    assert again is not None
    assert (again.cancel_requested, again.next_poll_at) == (True, at(60))


async def test_count_runs_by_namespace_and_state(store: Store) -> None:
    """count_runs counts one namespace's runs in the given states, or in all when None."""
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run(state=S.SUBMITTING), NOW)
    await store.create_run(new_run("team-b", state=S.QUEUED), NOW)
    assert await store.count_runs("team-a", {S.QUEUED}) == 2
    assert await store.count_runs("team-a", {S.QUEUED, S.SUBMITTING}) == 3
    assert await store.count_runs("team-a", LIVE) == 0
    assert await store.count_runs("team-a") == 3


async def test_counts_by_namespace_and_state(store: Store) -> None:
    """counts_by_namespace_state reports every non-empty (namespace, state) pair."""
    run, _ = await store.create_run(new_run(), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run("team-b"), NOW)
    await store.transition(run.id, S.RUNNING, expected={S.SUBMITTING}, now=at(1))
    assert await store.counts_by_namespace_state() == {
        ("team-a", S.RUNNING): 1,
        ("team-a", S.QUEUED): 1,
        ("team-b", S.SUBMITTING): 1,
    }
    assert await store.counts_by_namespace_state(LIVE) == {("team-a", S.RUNNING): 1}


async def test_list_outbox_across_runs_oldest_first(store: Store) -> None:
    """list_outbox without a run lists every run's events in the order they were written."""
    ids = []
    for seconds in (1, 2, 3):
        run, _ = await store.create_run(new_run(), NOW)
        event = {"type": "run.finished", "n": seconds}
        await store.transition(
            run.id, S.FAILED, expected={S.SUBMITTING}, now=at(seconds), outbox_event=event
        )
        ids.append(run.id)
    entries = await store.list_outbox(limit=2)
    assert [(e.run_id, e.payload["n"]) for e in entries] == [(ids[0], 1), (ids[1], 2)]
    assert entries[0].id < entries[1].id


async def test_installation_id_is_made_once_and_kept(ledger: Ledger) -> None:
    """The installation id is 32 hex characters and survives closing and reopening."""
    first = await ledger.open()
    made = first.installation_id
    await first.close()
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert (await ledger.open()).installation_id == made


async def test_reopening_keeps_every_run_and_migrates_nothing_twice(ledger: Ledger) -> None:
    """Runs survive a close and reopen, and reopening an up-to-date ledger is harmless."""
    first = await ledger.open()
    run, _ = await first.create_run(new_run(key="k"), NOW)
    await first.close()
    for _ in range(2):
        again = await ledger.open()
        assert await again.get_run("team-a", run.id) == run
        assert await again.create_run(new_run(key="k"), NOW) == (run, False)
        await again.close()


async def test_stores_opened_together_agree_on_the_ledger(ledger: Ledger) -> None:
    """Several stores opening a fresh ledger at once migrate it once and share its identity."""
    stores = [ledger.store() for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    assert len({s.installation_id for s in stores}) == 1
    run, _ = await stores[0].create_run(new_run(), NOW)
    assert await stores[3].get_run("team-a", run.id) == run


async def test_open_twice_and_close_twice_are_harmless(ledger: Ledger) -> None:
    """open() on an open store and close() on a closed one do nothing."""
    store = await ledger.open()
    await store.open()
    await store.ping()
    await store.close()
    await store.close()


async def test_a_closed_store_raises_store_error(ledger: Ledger) -> None:
    """Using a store before open() or after close() raises StoreError, not a foreign error."""
    store = ledger.store()
    with pytest.raises(StoreError):
        _ = store.installation_id
    with pytest.raises(StoreError):
        await store.ping()
    await store.open()
    await store.close()
    with pytest.raises(StoreError):
        await store.get_run_by_id(1)


async def test_the_ledger_counts_its_commits_and_the_writes_they_carried(ledger: Ledger) -> None:
    """Each write the ledger commits is counted (one after another, each is its own commit);
    a read is not; a closed ledger reports nothing."""
    store = await ledger.open()
    commits, writes = store.commits
    for key in ("a", "b", "c"):
        await store.create_run(new_run(key=key), NOW)
    await store.get_run_by_idempotency_key("team-a", "a")
    assert store.commits == (commits + 3, writes + 3)
    await store.close()
    assert store.commits == (0, 0)
