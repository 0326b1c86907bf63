"""Single flight under a cold start (issue 4, DESIGN.md "Token cache"): however many requests
wait for a namespace's first token, one TokenRequest mints its ServiceAccount token and one
token exchange trades it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from gateway.appkeys import METRICS
from tests.e2e.specs import spec
from tests.fixtures.identity_stack import NO_RETRY, IdentityStackFactory

NAMESPACES = 100
PER_NAMESPACE = 20
# Enough in flight that every cold namespace has several requests waiting on its first token,
# few enough for a shared 2-core machine.
IN_FLIGHT = 200
# Runs stay PENDING and the poller waits a minute before its first look, so the only calls
# made are the submissions and their tokens.
IDLE_LIFECYCLE = {"pending_seconds": 3600, "running_seconds": 1, "terminating_seconds": 1}
IDLE_POLLER = {"min_interval_seconds": 60, "max_interval_seconds": 120}


@pytest.mark.e2e
async def test_cold_burst_mints_and_exchanges_once_per_namespace(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """2,000 concurrent submissions over 100 cold namespaces make exactly 100 TokenRequests
    and 100 token exchanges, and every run is its namespace's principal."""
    stack = await identity_stack_factory(lifecycle=IDLE_LIFECYCLE, poller=IDLE_POLLER)
    owners = {
        f"cold-{i:03d}": stack.labelled_service_account(f"cold-{i:03d}", "runner")
        for i in range(NAMESPACES)
    }
    await stack.synced(within=10)
    client = stack.client(retry=NO_RETRY)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def submit(ns: str, i: int) -> int:
        async with gate:
            submitted = await client.submit(ns, spec(f"{ns}.{i}"))
        return submitted.status

    # Each namespace's submissions back to back: requests reach the token cache one ledger
    # write apart, so a namespace's burst arrives while its first fetch is still in flight.
    # (Round-robin would space them a hundred writes apart, long after that fetch ended.)
    plan = [(ns, i) for ns in owners for i in range(PER_NAMESPACE)]
    started = time.monotonic()
    statuses = await asyncio.gather(*(submit(ns, i) for ns, i in plan))
    elapsed = time.monotonic() - started

    assert Counter(statuses) == {201: NAMESPACES * PER_NAMESPACE}, elapsed
    # The burst did overlap the first fetches: far more callers found no token yet than
    # fetches were made, so most of them joined a fetch already in flight.
    assert stack.app is not None
    misses = stack.app[METRICS].registry.get_sample_value(
        "lakegate_token_cache_events_total",
        {"event": "miss", "kind": "service-account-federation"},
    )
    assert misses is not None
    assert misses > NAMESPACES
    assert stack.token_exchanges() == NAMESPACES
    assert stack.kube.request_count("create", "serviceaccounts/token") == NAMESPACES
    for ns in owners:
        assert stack.kube.token_requests(ns, "runner") == 1, ns
    remote = stack.emulator.runs()
    assert len(remote) == NAMESPACES * PER_NAMESPACE
    for run in remote:
        assert run["principal"] == owners[run["run_name"].split(".")[0]].name, run
