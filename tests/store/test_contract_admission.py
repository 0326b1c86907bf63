"""Store contract: the admission reads (usage, the queue's heads, active counts)."""

from __future__ import annotations

import pytest

from gateway.model import NamespaceUsage, RunState
from gateway.store import Admission, Store
from tests.store.factories import NOW, at, new_run

S = RunState


async def _finish(store: Store, run_id: int, seconds: float) -> None:
    await store.transition(run_id, S.PENDING, expected={S.SUBMITTING}, now=at(1))
    await store.transition(run_id, S.SUCCEEDED, expected={S.PENDING}, now=at(seconds))


async def test_usage_counts_the_namespace_and_its_workspace(store: Store) -> None:
    """usage gives the namespace's active and queued runs and the workspace's active runs."""
    await store.create_run(new_run(), at(-10))
    await store.create_run(new_run(state=S.QUEUED), at(-5))
    await store.create_run(new_run("team-b"), at(-1))
    usage = await store.usage("team-a", "adb-123", NOW)
    assert (usage.active, usage.queued, usage.workspace_active) == (1, 1, 2)
    assert usage.recent_submissions == (at(-5), at(-10))
    assert (await store.usage("team-a", "elsewhere", NOW)).workspace_active == 0


async def test_usage_leaves_out_runs_older_than_the_rate_window(store: Store) -> None:
    """Only runs created within the last hour are in recent_submissions."""
    await store.create_run(new_run(), at(-3_601))
    await store.create_run(new_run(), at(-3_599))
    assert (await store.usage("team-a", "adb-123", NOW)).recent_submissions == (at(-3_599),)


async def test_usage_gives_the_mean_time_of_runs_that_ended(store: Store) -> None:
    """mean_run_seconds averages creation to end over ended runs; None before any ended."""
    first, _ = await store.create_run(new_run(), NOW)
    assert (await store.usage("team-a", "adb-123", NOW)).mean_run_seconds is None
    second, _ = await store.create_run(new_run(), NOW)
    await _finish(store, first.id, 10)
    await _finish(store, second.id, 30)
    assert (await store.usage("team-a", "adb-123", at(60))).mean_run_seconds == 20


async def test_queued_heads_are_the_oldest_of_each_namespace(store: Store) -> None:
    """queued_heads gives up to N QUEUED runs per namespace, oldest first, by namespace."""
    ids: dict[str, list[int]] = {}
    for name in ["team-b", "team-a", "team-b", "team-a", "team-a"]:
        run, _ = await store.create_run(new_run(name, state=S.QUEUED), NOW)
        ids.setdefault(name, []).append(run.id)
    await store.create_run(new_run("team-a"), NOW)
    heads = await store.queued_heads(2)
    assert [(r.namespace, r.id) for r in heads] == [
        ("team-a", ids["team-a"][0]),
        ("team-a", ids["team-a"][1]),
        ("team-b", ids["team-b"][0]),
        ("team-b", ids["team-b"][1]),
    ]
    assert all(r.state is S.QUEUED for r in heads)


async def test_queued_heads_drop_a_run_once_it_leaves_the_queue(store: Store) -> None:
    """An admitted or cancelled run is no longer a head; the next one is."""
    one, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    two, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    three, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.transition(one.id, S.SUBMITTING, expected={S.QUEUED}, now=at(1))
    await store.transition(two.id, S.CANCELED, expected={S.QUEUED}, now=at(1))
    assert [r.id for r in await store.queued_heads(5)] == [three.id]


async def test_queued_heads_refuse_a_limit_below_one(store: Store) -> None:
    """per_namespace below 1 is a caller bug."""
    with pytest.raises(ValueError, match="limit"):
        await store.queued_heads(0)


async def test_active_counts_by_workspace_and_namespace(store: Store) -> None:
    """active_counts counts SUBMITTING to TERMINATING per (workspace, namespace) only."""
    ended, _ = await store.create_run(new_run(), NOW)
    await _finish(store, ended.id, 5)
    await store.create_run(new_run(), NOW)
    await store.create_run(new_run(), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run("team-b"), NOW)
    assert await store.active_counts() == {("adb-123", "team-a"): 2, ("adb-123", "team-b"): 1}


async def test_an_admission_sets_the_first_history_message(store: Store) -> None:
    """An Admission from admit chooses the state and the message of the first history entry."""

    def admit(usage: NamespaceUsage) -> Admission:
        return Admission(S.QUEUED, f"queued: {usage.active} active")

    run, _ = await store.create_run(new_run(), NOW, admit=admit)
    held = await store.get_run("team-a", run.id, with_history=True)
    assert held is not None
    assert held.state is S.QUEUED
    assert [(h.to_state, h.message) for h in held.history] == [(S.QUEUED, "queued: 0 active")]


async def test_queue_counts_give_queued_and_active_per_pair(store: Store) -> None:
    """queue_counts: QUEUED runs and active runs per (workspace, namespace), one snapshot."""
    await store.create_run(new_run(), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run("team-b", state=S.QUEUED), NOW)
    queued, active = await store.queue_counts()
    assert queued == {("adb-123", "team-a"): 2, ("adb-123", "team-b"): 1}
    assert active == {("adb-123", "team-a"): 1}


async def test_queued_heads_of_reads_only_the_namespaces_asked(store: Store) -> None:
    """queued_heads_of keeps queued_heads' order for the namespaces given; [] for none."""
    ids: dict[str, list[int]] = {}
    for name in ["team-a", "team-b", "team-c", "team-a"]:
        run, _ = await store.create_run(new_run(name, state=S.QUEUED), NOW)
        ids.setdefault(name, []).append(run.id)
    heads = await store.queued_heads_of({"team-a", "team-c"}, 5)
    assert [r.id for r in heads] == ids["team-a"] + ids["team-c"]
    assert await store.queued_heads_of(set(), 5) == []
