"""Store contract: leases on runs, claimed by replicas (``gateway.store.leases``).

Two stores on one ledger stand for two replicas; each test runs on every backend.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateway.model import NamespaceUsage, RunState
from gateway.store import Reschedule, Store
from gateway.store._pg_connection import PoolSettings
from gateway.store.postgres import PostgresStore
from tests.store.factories import NOW, Ledger, at, new_run

S = RunState
FOLLOWED = frozenset({S.SUBMITTING, S.PENDING, S.RUNNING})


async def _due(store: Store, count: int = 1, namespace: str = "team-a") -> list[int]:
    ids = []
    for _ in range(count):
        run, _ = await store.create_run(new_run(namespace, next_poll_at=at(-5)), at(-10))
        ids.append(run.id)
    return ids


async def _claim(store: Store, owner: str, now_s: float = 0, lease: float = 30) -> list[int]:
    runs = await store.claim_due_runs(
        at(now_s), owner=owner, lease_seconds=lease, states=FOLLOWED, limit=100
    )
    return [run.id for run in runs]


async def _pending(store: Store, namespace: str = "team-a", remote: int = 1) -> int:
    run, _ = await store.create_run(new_run(namespace), at(-10))
    await store.transition(run.id, S.PENDING, expected={S.SUBMITTING}, now=at(-9),
                           databricks_run_id=remote, next_poll_at=at(100))  # fmt: skip
    return run.id


async def test_a_claim_leases_due_runs_most_overdue_first(store: Store) -> None:
    """claim_due_runs returns due runs in the states asked, oldest due first, up to limit."""
    late, _ = await store.create_run(new_run(next_poll_at=at(-50)), at(-60))
    early, _ = await store.create_run(new_run(next_poll_at=at(-5)), at(-60))
    await store.create_run(new_run(next_poll_at=at(50)), at(-60))
    runs = await store.claim_due_runs(
        NOW, owner="a", lease_seconds=30, states={S.SUBMITTING}, limit=10
    )
    assert [run.id for run in runs] == [late.id, early.id]
    one = await store.claim_due_runs(at(60), owner="b", lease_seconds=30, states=FOLLOWED, limit=1)
    assert len(one) == 1


async def test_two_replicas_never_claim_the_same_run_while_its_lease_lasts(
    ledger: Ledger,
) -> None:
    """A run claimed by one replica is not handed to another until the lease runs out."""
    first, second = await ledger.open(), await ledger.open()
    ids = await _due(first, 3)
    assert await _claim(first, "a") == ids
    assert await _claim(second, "b", now_s=29) == []
    assert await _claim(second, "b", now_s=30) == ids


async def test_concurrent_claims_split_the_work(ledger: Ledger) -> None:
    """Many replicas claiming at once get disjoint runs that together are all that was due."""
    stores = [await ledger.open() for _ in range(3)]
    ids = await _due(stores[0], 30)

    async def claims(store: Store, owner: str) -> list[int]:
        got: list[int] = []
        for _ in range(10):
            runs = await store.claim_due_runs(
                NOW, owner=owner, lease_seconds=30, states=FOLLOWED, limit=2
            )
            got += [run.id for run in runs]
        return got

    got = await asyncio.gather(*(claims(s, f"r{i}") for i, s in enumerate(stores)))
    everything = [run_id for part in got for run_id in part]
    assert sorted(everything) == ids


async def test_a_released_run_is_free_to_claim_at_once(ledger: Ledger) -> None:
    """release_leases ends the claim: another replica claims the run before the lease ran out."""
    first, second = await ledger.open(), await ledger.open()
    ids = await _due(first, 2)
    await _claim(first, "a")
    assert await first.release_leases(ids, owner="a") == 2
    assert await second.release_leases(ids, owner="b") == 0
    assert await _claim(second, "b", now_s=1) == ids


async def test_renewal_keeps_the_claim_and_says_what_was_kept(ledger: Ledger) -> None:
    """renew_leases extends the owner's claims only; a run taken over is not in its answer."""
    first, second = await ledger.open(), await ledger.open()
    ids = await _due(first, 2)
    await _claim(first, "a")
    assert await first.renew_leases(ids[:1], at(20), owner="a", lease_seconds=30) == {ids[0]}
    assert await _claim(second, "b", now_s=40) == ids[1:]
    assert await first.renew_leases(ids, at(41), owner="a", lease_seconds=30) == {ids[0]}
    assert await first.renew_leases([], at(41), owner="a", lease_seconds=30) == set()


async def test_a_write_from_a_replica_taken_over_does_nothing(ledger: Ledger) -> None:
    """transition, update_run and reschedule_runs fenced by owner leave a run taken over alone."""
    first, second = await ledger.open(), await ledger.open()
    (run_id,) = await _due(first)
    await _claim(first, "a")
    await _claim(second, "b", now_s=31)
    assert await first.transition(
        run_id, S.PENDING, expected={S.SUBMITTING}, now=at(32), databricks_run_id=7, owner="a"
    ) is None  # fmt: skip
    assert await first.update_run(run_id, attempts=3, owner="a") is None
    update = Reschedule(run_id, S.SUBMITTING, next_poll_at=at(99))
    assert await first.reschedule_runs([update], owner="a") == 0
    run = await first.get_run_by_id(run_id)
    assert run is not None
    assert (run.state, run.attempts, run.next_poll_at) == (S.SUBMITTING, 0, at(-5))
    moved = await second.transition(
        run_id, S.PENDING, expected={S.SUBMITTING}, now=at(32), databricks_run_id=7, owner="b"
    )
    assert moved is not None
    assert moved.state is S.PENDING


async def test_the_fence_outlasts_the_release(ledger: Ledger) -> None:
    """After the new owner released the run, the replica it took it from still cannot write."""
    first, second = await ledger.open(), await ledger.open()
    (run_id,) = await _due(first)
    await _claim(first, "a")
    await _claim(second, "b", now_s=31)
    await second.release_leases([run_id], owner="b")
    update = Reschedule(run_id, S.SUBMITTING, next_poll_at=at(99))
    assert await first.reschedule_runs([update], owner="a") == 0
    assert await second.reschedule_runs([update], owner="b") == 1


async def test_unfenced_and_unclaimed_writes_apply(store: Store) -> None:
    """A run nobody claimed takes any owner's write; owner None is never fenced."""
    first, second = await _due(store, 2)
    assert await store.update_run(first, attempts=2, owner="a") is not None
    await _claim(store, "b")
    assert await store.update_run(second, attempts=2) is not None
    update = Reschedule(second, S.SUBMITTING, next_poll_at=at(99))
    assert await store.reschedule_runs([update]) == 1


async def test_a_group_claim_skips_runs_another_replica_holds(ledger: Ledger) -> None:
    """claim_group leases the group's active runs but those held by another replica."""
    first, second = await ledger.open(), await ledger.open()
    ids = [await _pending(first, remote=i) for i in range(1, 4)]
    await _pending(first, "team-b", remote=9)
    held = await first.claim_group("team-a", {}, NOW, owner="a", lease_seconds=30)
    assert [run.id for run in held] == sorted(ids, reverse=True)
    await first.release_leases(ids[:1], owner="a")
    got = await second.claim_group("team-a", {}, at(1), owner="b", lease_seconds=30)
    assert [run.id for run in got] == ids[:1]
    again = await first.claim_group("team-a", {}, at(2), owner="a", lease_seconds=30)
    assert sorted(run.id for run in again) == ids[1:]


async def test_queue_heads_are_claimed_per_namespace(ledger: Ledger) -> None:
    """claim_queued_heads skips a namespace whose heads another replica holds, whole."""
    first, second = await ledger.open(), await ledger.open()
    a = [(await first.create_run(new_run("team-a", state=S.QUEUED), NOW))[0].id for _ in "xy"]
    b = [(await first.create_run(new_run("team-b", state=S.QUEUED), NOW))[0].id for _ in "xy"]
    mine = await first.claim_queued_heads(["team-a"], 1, NOW, owner="a", lease_seconds=30)
    assert [run.id for run in mine] == a[:1]
    theirs = await second.claim_queued_heads(
        ["team-a", "team-b"], 2, at(1), owner="b", lease_seconds=30
    )
    assert [run.id for run in theirs] == b
    assert await second.claim_queued_heads([], 2, at(1), owner="b", lease_seconds=30) == []


async def test_promotion_rechecks_the_limit_in_its_transaction(store: Store) -> None:
    """promote_queued moves QUEUED to SUBMITTING, due now, only when fits() says yes."""
    await store.create_run(new_run("team-a"), NOW)
    queued, _ = await store.create_run(new_run("team-a", state=S.QUEUED), NOW)
    seen: list[NamespaceUsage] = []

    def at_most_one(usage: NamespaceUsage) -> bool:
        seen.append(usage)
        return usage.active < 1

    assert await store.promote_queued(
        queued.id, at(1), owner="a", fits=at_most_one, message="admitted"
    ) is None  # fmt: skip
    assert (seen[0].active, seen[0].queued, seen[0].workspace_active) == (1, 1, 1)
    promoted = await store.promote_queued(
        queued.id, at(2), owner="a", fits=lambda usage: True, message="admitted"
    )
    assert promoted is not None
    assert (promoted.state, promoted.next_poll_at) == (S.SUBMITTING, at(2))
    full = await store.get_run("team-a", queued.id, with_history=True)
    assert full is not None
    assert full.history[-1].message == "admitted"
    assert await store.promote_queued(
        queued.id, at(3), owner="a", fits=lambda usage: True, message="again"
    ) is None  # fmt: skip


async def test_promotion_is_fenced(ledger: Ledger) -> None:
    """A queued run whose heads another replica claimed is not promoted by the first."""
    first, second = await ledger.open(), await ledger.open()
    queued, _ = await first.create_run(new_run(state=S.QUEUED), NOW)
    await first.claim_queued_heads(["team-a"], 1, NOW, owner="a", lease_seconds=1)
    await second.claim_queued_heads(["team-a"], 1, at(2), owner="b", lease_seconds=30)
    assert await first.promote_queued(
        queued.id, at(3), owner="a", fits=lambda usage: True, message="late"
    ) is None  # fmt: skip
    assert await second.promote_queued(
        queued.id, at(3), owner="b", fits=lambda usage: True, message="admitted"
    ) is not None  # fmt: skip


async def test_concurrent_promotions_hold_the_limit(ledger: Ledger) -> None:
    """Replicas promoting at once never put a namespace over what fits() allows."""
    stores = [await ledger.open() for _ in range(3)]
    ids = [(await stores[0].create_run(new_run(state=S.QUEUED), NOW))[0].id for _ in range(9)]

    def under_three(usage: NamespaceUsage) -> bool:
        return usage.active < 3

    results = await asyncio.gather(
        *(
            stores[i % 3].promote_queued(
                run_id, at(1), owner=f"r{i % 3}", fits=under_three, message="admitted"
            )
            for i, run_id in enumerate(ids)
        )
    )
    assert sum(result is not None for result in results) == 3
    assert await stores[0].count_runs("team-a", {S.SUBMITTING}) == 3


@pytest.mark.parametrize("seconds", [0, -1])
async def test_a_lease_must_last(store: Store, seconds: float) -> None:
    """A lease of no time is a caller bug: ValueError."""
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.claim_due_runs(NOW, owner="a", lease_seconds=seconds, states=FOLLOWED, limit=1)


@pytest.mark.postgres
async def test_postgres_outbox_claims_carry_the_replica_id(pg_dsn: str) -> None:
    """On PostgreSQL an outbox claim is leased to the claimer's replica id, as runs are."""
    store = PostgresStore(PoolSettings(dsn=pg_dsn, max_size=2))
    await store.open()
    try:
        run, _ = await store.create_run(new_run(), NOW)
        event = {"type": "run.completed", "id": run.id}
        await store.transition(run.id, S.INTERNAL_ERROR, expected={S.SUBMITTING}, now=at(1),
                               outbox_event=event)  # fmt: skip
        assert [
            e.run_id
            for e in await store.claim_outbox(at(2), owner="replica-7", limit=5, lease_seconds=30)
        ] == [run.id]
        conn = await asyncpg.connect(pg_dsn)
        try:
            owners = await conn.fetch("SELECT lease_owner FROM outbox")
        finally:
            await conn.close()
        assert [row["lease_owner"] for row in owners] == ["replica-7"]
    finally:
        await store.close()
