"""The dispatcher: signed, retried, ordered, at least once, and never where it must not go."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from datetime import timedelta

from aiohttp.abc import AbstractResolver, ResolveResult
from structlog.testing import capture_logs

from gateway.model import RunState
from gateway.runs.specs import state_changed_event
from gateway.runs.types import utcnow
from tests.runs.conftest import new_run
from tests.support.waiting import until
from tests.webhooks.conftest import RigFactory


async def test_a_completed_run_is_delivered_signed_with_the_run_in_it(rig: RigFactory) -> None:
    """One run.completed arrives, verified, carrying the run, its type and its webhook-id."""
    async with rig() as r:
        run_id = await r.complete(RunState.REJECTED)
        await r.receiver.wait_for(1)
        [delivery] = r.receiver.deliveries
        assert delivery.body["type"] == "run.completed"
        assert delivery.body["id"] == delivery.webhook_id
        assert (delivery.body["data"]["id"], delivery.body["data"]["state"]) == (
            run_id,
            "REJECTED",
        )
        [row] = await r.settled()
        assert (row.attempts, row.last_status, row.delivered_at is not None) == (1, 200, True)


async def test_failures_are_retried_with_the_same_webhook_id(rig: RigFactory) -> None:
    """A receiver failing the first tries gets the event later, under one webhook-id."""
    async with rig(statuses=[500, 503, 502]) as r:
        await r.complete()
        await r.receiver.wait_for(1)
        assert len(r.receiver.attempts) == 4
        assert len(set(r.receiver.attempts)) == 1
        [row] = await r.settled()
        assert row.attempts == 4


async def test_a_receiver_that_never_recovers_ends_dead_and_redelivery_works(
    rig: RigFactory,
) -> None:
    """After the last try the event is dead; redelivery sends it again with the same id."""
    async with rig(statuses=[500] * 4, schedule=[0, 0.02, 0.02, 0.02]) as r:
        await r.complete()
        [row] = await r.settled()
        assert row.dead_at is not None
        assert (row.attempts, row.last_status) == (4, 500)
        [dead] = await r.admin.dead("team-a", limit=10)
        assert await r.admin.redeliver("team-a", None) == [dead.id]
        await r.receiver.wait_for(1)
        assert r.receiver.deliveries[0].webhook_id == r.receiver.attempts[0]


async def test_a_410_disables_the_endpoint_until_it_is_enabled(rig: RigFactory) -> None:
    """410 Gone kills the event and disables the endpoint; later events wait dead for it."""
    async with asyncio.timeout(20), rig(statuses=[410]) as r:
        await r.complete()
        await r.settled()
        [endpoint] = await r.admin.disabled("team-a")
        assert endpoint.url == r.receiver.url
        await r.complete()
        rows = await r.settled()
        assert [row.last_error.split(" ")[0] for row in rows] == ["410", "endpoint"]
        assert len(r.receiver.attempts) == 1
        await r.admin.enable("team-a", r.receiver.url)
        r.dispatcher._disabled = frozenset()  # the cache would refresh within seconds
        await r.admin.redeliver("team-a", None)
        await r.receiver.wait_for(2)


async def test_redirects_are_failures_never_followed(rig: RigFactory) -> None:
    """A 302 counts as a failure and its Location is never requested."""
    async with rig(statuses=[302]) as r:
        await r.complete()
        await r.receiver.wait_for(1)
        assert r.receiver.redirected_hits == 0
        assert len(r.receiver.attempts) == 2


async def test_retry_after_on_503_is_honoured(rig: RigFactory) -> None:
    """A 503 with Retry-After waits at least that long, beyond the schedule's delay."""
    async with rig(statuses=[503]) as r:
        r.receiver.headers = {"Retry-After": "30"}
        await r.complete()
        await r.receiver.wait_for(0)
        for _ in range(200):
            [row] = await r.rows()
            if row.attempts:
                break
            await asyncio.sleep(0.02)
        assert row.next_attempt_at is not None
        assert row.next_attempt_at - row.created_at >= timedelta(seconds=29)
        assert row.last_status == 503


async def test_a_slow_receiver_times_out_and_is_retried(rig: RigFactory) -> None:
    """An answer slower than the timeout is a failure; the next try succeeds."""
    async with rig(timeout_seconds=0.1) as r:
        r.receiver.stall_seconds = 0.3
        await r.complete()
        for _ in range(200):
            [row] = await r.rows()
            if row.attempts:
                break
            await asyncio.sleep(0.02)
        assert row.last_error.startswith("no answer within")
        r.receiver.stall_seconds = 0
        await r.receiver.wait_for(1)


async def test_a_runs_events_arrive_in_order(rig: RigFactory) -> None:
    """A run's completion is not tried before its earlier state change is delivered."""
    async with rig(statuses=[500, 500]) as r:
        run, _ = await r.store.create_run(new_run(), utcnow())
        running = await r.store.transition(
            run.id, RunState.RUNNING, expected={run.state}, now=utcnow(),
            outbox_event=state_changed_event(replace(run, state=RunState.RUNNING), at=utcnow()),
        )  # fmt: skip
        assert running is not None
        await r.complete(run=running)
        await r.receiver.wait_for(2)
        assert [d.body["type"] for d in r.receiver.deliveries] == [
            "run.state_changed",
            "run.completed",
        ]
        first, second = (d.webhook_id for d in r.receiver.deliveries)
        assert r.receiver.attempts == [first, first, first, second]


class _Answers(AbstractResolver):
    """Answers every name with the test's addresses; sends no packet."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


def _named(url: str) -> str:
    return url.replace("127.0.0.1", "hooks.team-a.test")


async def test_a_name_resolving_to_a_private_address_is_never_connected(
    rig: RigFactory,
) -> None:
    """A host name whose answer is private is refused at connection time, and retried."""
    async with rig(url=_named, resolver=_Answers("10.0.0.1"), schedule=[0]) as r:
        await r.complete()
        [row] = await r.settled()
        assert row.dead_at is not None
        assert "refused by the URL guard" in row.last_error
        assert "private" in row.last_error
        assert r.receiver.attempts == []


async def test_a_name_resolving_to_an_allowed_network_is_delivered(rig: RigFactory) -> None:
    """With loopback allowed, a name answered with 127.0.0.1 reaches the receiver."""
    async with rig(url=_named, resolver=_Answers("127.0.0.1")) as r:
        await r.complete()
        await r.receiver.wait_for(1)


async def test_no_endpoint_means_settled_with_nowhere(rig: RigFactory) -> None:
    """An event of a namespace with no endpoint is settled at once and sent nowhere."""
    async with rig() as r:
        await r.complete(namespace="team-b")
        [row] = await r.settled()
        assert (row.delivered_at is not None, row.endpoint, row.attempts) == (True, None, 0)
        assert r.receiver.attempts == []


async def test_deliveries_are_counted_by_namespace_outcome_and_status(rig: RigFactory) -> None:
    """Metrics count each attempt's outcome and status, and the lag, by namespace."""
    async with rig(statuses=[503]) as r:
        await r.complete()
        await r.receiver.wait_for(1)
        await r.settled()
        text = r.metrics.render().decode()
        for line in (
            'lakegate_webhook_deliveries_total{namespace="team-a",outcome="retry",status="503"}'
            " 1.0",
            'lakegate_webhook_deliveries_total{namespace="team-a",outcome="delivered",'
            'status="200"} 1.0',
            'lakegate_webhook_lag_seconds_count{namespace="team-a"} 1.0',
        ):
            assert line in text


async def test_a_delivery_longer_than_the_lease_keeps_its_claim(rig: RigFactory) -> None:
    """The lease is renewed while the receiver is slow: no other replica claims the row."""
    async with rig(lease_seconds=1, timeout_seconds=5) as r:
        r.receiver.stall_seconds = 2.5
        await r.complete()
        await until(lambda: bool(r.dispatcher._leased))
        for _ in range(4):  # past two leases of 1 s
            await asyncio.sleep(0.6)
            assert await r.store.claim_outbox(utcnow(), owner="other", limit=5,
                                              lease_seconds=1) == []  # fmt: skip
        [row] = await r.settled()
        assert (row.attempts, row.last_status) == (1, 200)
        assert len(r.receiver.attempts) == 1


async def test_a_delivery_taken_over_is_not_settled_by_the_first_replica(
    rig: RigFactory,
) -> None:
    """Another replica took the row over (as if this one hung past its lease): this one's
    result is fenced off, the row stays the other's, and the loss is logged."""
    async with rig(lease_seconds=1, timeout_seconds=5) as r:
        r.receiver.stall_seconds = 0.8
        await r.complete()
        await until(lambda: bool(r.dispatcher._leased))
        with capture_logs() as logs:
            later = utcnow() + timedelta(hours=1)
            [taken] = await r.store.claim_outbox(later, owner="other", limit=5, lease_seconds=1)
            await r.receiver.wait_for(1)
            # The attempt finished and its settlement was written, and refused.
            await until(lambda: any(e["event"] == "webhook_settlements_fenced" for e in logs))
        [row] = await r.rows()
        assert (row.id, row.delivered_at, row.attempts) == (taken.id, None, 0)
        assert "webhook_leases_lost" in [e["event"] for e in logs]
        assert not r.dispatcher._leased
