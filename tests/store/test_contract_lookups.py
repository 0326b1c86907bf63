"""Store contract: a replay found by its Idempotency-Key, and the active runs of one group."""

from __future__ import annotations

import itertools

from gateway.model import RunRecord, RunState
from gateway.store import Store
from tests.store.factories import NOW, at, new_run

S = RunState
ETL = {"service_account": "etl"}
_remote_ids = itertools.count(455_644_833)


async def run_in(
    store: Store,
    state: RunState,
    *,
    namespace: str = "team-a",
    identity_ref: dict[str, str] | None = None,
) -> RunRecord:
    """A run of the namespace moved to ``state``; one Databricks knows of once past SUBMITTING."""
    run, _ = await store.create_run(new_run(namespace, identity_ref=identity_ref), NOW)
    if state is S.SUBMITTING:
        return run
    moved = await store.transition(
        run.id,
        state,
        expected={S.SUBMITTING},
        now=at(1),
        databricks_run_id=None if state is S.REJECTED else next(_remote_ids),
    )
    assert moved is not None
    return moved


async def test_a_replay_is_found_by_its_key(store: Store) -> None:
    """get_run_by_idempotency_key returns the run the key created, as get_run reads it."""
    run, _ = await store.create_run(new_run(key="nightly-2026-01-01"), NOW)
    found = await store.get_run_by_idempotency_key("team-a", "nightly-2026-01-01")
    assert found == await store.get_run("team-a", run.id)


async def test_an_unused_key_finds_nothing(store: Store) -> None:
    """A key no request of the namespace used gives None."""
    await store.create_run(new_run(key="used"), NOW)
    assert await store.get_run_by_idempotency_key("team-a", "unused") is None


async def test_a_key_is_looked_up_in_its_namespace_only(store: Store) -> None:
    """Another namespace's run with the same key is not found, and each finds its own."""
    a, _ = await store.create_run(new_run("team-a", key="shared"), NOW)
    b, _ = await store.create_run(new_run("team-b", key="shared"), NOW)
    assert await store.get_run_by_idempotency_key("team-c", "shared") is None
    found_a = await store.get_run_by_idempotency_key("team-a", "shared")
    found_b = await store.get_run_by_idempotency_key("team-b", "shared")
    assert (found_a and found_a.id, found_b and found_b.id) == (a.id, b.id)


async def test_the_group_holds_the_runs_databricks_is_running_newest_first(store: Store) -> None:
    """PENDING, RUNNING and TERMINATING runs with a Databricks id, newest first, no history."""
    pending = await run_in(store, S.PENDING)
    running = await run_in(store, S.RUNNING)
    ending = await run_in(store, S.TERMINATING)
    group = await store.active_runs_of_group("team-a", {})
    assert [r.id for r in group] == [ending.id, running.id, pending.id]
    assert group[0] == ending
    assert all(r.history == () for r in group)


async def test_runs_not_yet_or_no_longer_at_databricks_are_not_in_the_group(store: Store) -> None:
    """SUBMITTING, QUEUED and ended runs are left out: there is nothing to ask Databricks."""
    await run_in(store, S.SUBMITTING)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await run_in(store, S.SUCCEEDED)
    await run_in(store, S.REJECTED)
    assert await store.active_runs_of_group("team-a", {}) == []


async def test_the_group_is_one_namespace_and_one_identity_choice(store: Store) -> None:
    """Runs of another namespace or under another identity choice belong to other groups."""
    own = await run_in(store, S.RUNNING)
    chosen = await run_in(store, S.RUNNING, identity_ref=ETL)
    await run_in(store, S.RUNNING, namespace="team-b")
    await run_in(store, S.RUNNING, identity_ref={"secret": "etl"})
    assert [r.id for r in await store.active_runs_of_group("team-a", {})] == [own.id]
    assert [r.id for r in await store.active_runs_of_group("team-a", ETL)] == [chosen.id]
    assert await store.active_runs_of_group("team-c", {}) == []


async def test_the_order_of_an_identity_choice_does_not_matter(store: Store) -> None:
    """A choice with several keys names the same group whatever order its keys come in."""
    run = await run_in(store, S.PENDING, identity_ref={"secret": "s", "service_account": "a"})
    group = await store.active_runs_of_group("team-a", {"service_account": "a", "secret": "s"})
    assert [r.id for r in group] == [run.id]
