"""Store contract: the outbox as the webhook dispatcher's queue, dead rows and endpoints."""

from __future__ import annotations

from gateway.model import RunState as S
from gateway.store import Store
from gateway.store.base import Settle, Settlement
from tests.store.factories import NOW, at, new_run


async def _events(store: Store, count: int = 1) -> list[int]:
    """A run with ``count`` events: a state change each, the last one ending it."""
    run, _ = await store.create_run(new_run(), NOW)
    steps = [*[S.PENDING, S.RUNNING, S.TERMINATING][: count - 1], S.SUCCEEDED]
    state = S.SUBMITTING
    for n, step in enumerate(steps):
        await store.transition(
            run.id, step, expected={state}, now=at(n), outbox_event={"type": f"e{n}"}
        )
        state = step
    return [e.id for e in await store.list_outbox(run_id=run.id)]


def _retry(entry_id: int, seconds: float, attempts: int = 1) -> Settlement:
    return Settlement(
        entry_id, Settle.RETRY, at=at(1), attempts=attempts, next_attempt_at=at(seconds),
        status=503, error="503 from receiver", endpoint="https://hooks.example/x",
    )  # fmt: skip


async def test_claim_leases_due_rows_oldest_first(store: Store) -> None:
    """Due rows are claimed once: a second claim inside the lease gets nothing."""
    a = await _events(store)
    b = await _events(store)
    claimed = await store.claim_outbox(at(10), owner="d1", limit=10, lease_seconds=30)
    assert [e.id for e in claimed] == a + b
    assert await store.claim_outbox(at(20), owner="d1", limit=10, lease_seconds=30) == []


async def test_an_expired_lease_is_claimed_again(store: Store) -> None:
    """A row whose claimant never settled it is due again when its lease runs out."""
    ids = await _events(store)
    await store.claim_outbox(at(10), owner="d1", limit=10, lease_seconds=30)
    again = await store.claim_outbox(at(41), owner="d1", limit=10, lease_seconds=30)
    assert [e.id for e in again] == ids


async def test_only_the_oldest_unsettled_event_of_a_run_is_due(store: Store) -> None:
    """A run's later event waits until the earlier one is delivered."""
    first, second = await _events(store, 2)
    assert [
        e.id for e in await store.claim_outbox(at(10), owner="d1", limit=10, lease_seconds=1)
    ] == [first]
    await store.settle_outbox(
        [Settlement(first, Settle.DELIVERED, at=at(10), attempts=1)], owner="d1"
    )
    assert [
        e.id for e in await store.claim_outbox(at(20), owner="d1", limit=10, lease_seconds=1)
    ] == [second]


async def test_a_retry_is_due_at_its_time_and_keeps_what_it_saw(store: Store) -> None:
    """A retry releases the lease, is not due before next_attempt_at, and records the attempt."""
    [entry] = await _events(store)
    await store.claim_outbox(at(1), owner="d1", limit=1, lease_seconds=300)
    assert await store.settle_outbox([_retry(entry, 60)], owner="d1") == 1
    assert await store.claim_outbox(at(59), owner="d1", limit=1, lease_seconds=300) == []
    [row] = await store.claim_outbox(at(60), owner="d1", limit=1, lease_seconds=300)
    assert (row.attempts, row.last_status, row.endpoint) == (1, 503, "https://hooks.example/x")


async def test_settling_a_settled_row_changes_nothing(store: Store) -> None:
    """Once delivered, a late settlement (another attempt's) leaves the row as it is."""
    [entry] = await _events(store)
    await store.settle_outbox(
        [Settlement(entry, Settle.DELIVERED, at=at(2), attempts=1)], owner="d1"
    )
    assert await store.settle_outbox([_retry(entry, 5, attempts=2)], owner="d1") == 0
    [row] = await store.list_outbox(run_id=(await store.list_outbox())[0].run_id)
    assert row.delivered_at == at(2)
    assert row.attempts == 1


async def test_dead_rows_are_listed_and_redelivered_with_their_ids(store: Store) -> None:
    """A dead row is listed for its namespace only, and redelivery makes it due afresh."""
    [one] = await _events(store)
    [two] = await _events(store)
    dead = [Settlement(i, Settle.DEAD, at=at(3), attempts=8, status=500) for i in (one, two)]
    await store.settle_outbox(dead, owner="d1")
    assert [e.id for e in await store.list_dead_outbox("team-a")] == [two, one]
    assert [e.id for e in await store.list_dead_outbox("team-a", before_id=two)] == [one]
    assert await store.list_dead_outbox("team-b") == []
    assert await store.claim_outbox(at(9), owner="d1", limit=10, lease_seconds=1) == []
    assert await store.redeliver_outbox("team-b", at(10)) == []
    assert await store.redeliver_outbox("team-a", at(10), entry_ids=[two, 999]) == [two]
    [row] = await store.claim_outbox(at(10), owner="d1", limit=10, lease_seconds=1)
    assert (row.id, row.attempts, row.dead_at) == (two, 0, None)
    assert await store.redeliver_outbox("team-a", at(11)) == [one]


async def test_a_dead_row_no_longer_holds_back_its_run(store: Store) -> None:
    """After an event of a run is dead, the run's next event is due."""
    first, second = await _events(store, 2)
    await store.settle_outbox([Settlement(first, Settle.DEAD, at=at(2), attempts=8)], owner="d1")
    assert [
        e.id for e in await store.claim_outbox(at(3), owner="d1", limit=5, lease_seconds=1)
    ] == [second]


async def test_endpoints_are_disabled_and_enabled_per_namespace(store: Store) -> None:
    """A disabled endpoint is listed for its namespace until it is enabled again."""
    url = "https://hooks.example/x"
    await store.disable_endpoint("team-a", url, at(1), reason="410 Gone")
    await store.disable_endpoint("team-a", url, at(5), reason="again")
    [endpoint] = await store.disabled_endpoints("team-a")
    assert (endpoint.url, endpoint.disabled_at, endpoint.reason) == (url, at(1), "410 Gone")
    assert await store.disabled_endpoints("team-b") == []
    assert len(await store.disabled_endpoints()) == 1
    assert await store.enable_endpoint("team-a", url) is True
    assert await store.enable_endpoint("team-a", url) is False
    assert await store.disabled_endpoints() == []


async def test_outbox_counts_pending_and_dead_per_namespace(store: Store) -> None:
    """outbox_counts reports unsettled and dead rows; delivered ones are not counted."""
    [a] = await _events(store)
    [b] = await _events(store)
    await _events(store)
    await store.settle_outbox(
        [Settlement(a, Settle.DELIVERED, at=at(1), attempts=1),
         Settlement(b, Settle.DEAD, at=at(1), attempts=8)], owner="d1"
    )  # fmt: skip
    assert await store.outbox_counts() == {("team-a", "pending"): 1, ("team-a", "dead"): 1}


async def test_a_late_settlement_after_a_takeover_changes_nothing(store: Store) -> None:
    """A's lease ran out mid-delivery and B claimed the row: A's settlement is fenced off."""
    [entry] = await _events(store)
    await store.claim_outbox(at(1), owner="a", limit=1, lease_seconds=10)
    [taken] = await store.claim_outbox(at(12), owner="b", limit=1, lease_seconds=10)
    assert taken.id == entry
    late = Settlement(entry, Settle.DELIVERED, at=at(13), attempts=1, status=200)
    assert await store.settle_outbox([late], owner="a") == 0
    # B's lease still holds: nobody else may claim the row before it runs out.
    assert await store.claim_outbox(at(15), owner="c", limit=1, lease_seconds=10) == []
    [row] = await store.list_outbox(run_id=taken.run_id)
    assert (row.delivered_at, row.attempts) == (None, 0)
    assert await store.settle_outbox([_retry(entry, 60)], owner="b") == 1


async def test_a_late_settlement_after_the_new_holder_settled_changes_nothing(
    store: Store,
) -> None:
    """B settled a retry after taking the row over; A's late DEAD does not overwrite it."""
    [entry] = await _events(store)
    await store.claim_outbox(at(1), owner="a", limit=1, lease_seconds=10)
    await store.claim_outbox(at(12), owner="b", limit=1, lease_seconds=10)
    assert await store.settle_outbox([_retry(entry, 60)], owner="b") == 1
    late = Settlement(entry, Settle.DEAD, at=at(14), attempts=8, status=500)
    assert await store.settle_outbox([late], owner="a") == 0
    [row] = await store.list_outbox(run_id=(await store.list_outbox())[0].run_id)
    assert (row.dead_at, row.next_attempt_at, row.attempts) == (None, at(60), 1)


async def test_renewal_keeps_a_claim_only_for_its_holder(store: Store) -> None:
    """A renewed row is not claimable until its new expiry; a taken-over one is not renewed."""
    one, two = (await _events(store))[0], (await _events(store))[0]
    await store.claim_outbox(at(1), owner="a", limit=2, lease_seconds=10)
    assert await store.renew_outbox([one, two], at(8), owner="a", lease_seconds=10) == {one, two}
    assert await store.claim_outbox(at(12), owner="b", limit=2, lease_seconds=10) == []
    assert await store.renew_outbox([one], at(12), owner="b", lease_seconds=10) == set()
    [taken] = await store.claim_outbox(at(19), owner="b", limit=1, lease_seconds=10)
    assert await store.renew_outbox([taken.id], at(20), owner="a", lease_seconds=10) == set()
    await store.settle_outbox([_retry(taken.id, 60)], owner="b")
    assert await store.renew_outbox([taken.id], at(21), owner="b", lease_seconds=10) == set()
    assert await store.renew_outbox([], at(21), owner="b", lease_seconds=10) == set()
