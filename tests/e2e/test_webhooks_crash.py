"""Webhooks survive crashes: SIGKILL the gateway between completions and deliveries.

The receiver (in this process, on loopback) fails the first tries of every event; the gateway
is killed several times while runs end and their events are retried. Afterwards every ended
run's run.completed has been delivered at least once, every try of an event carried one
webhook-id, and each run's events arrived in the order they happened.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.cli.client import is_terminal
from tests.e2e.specs import spec
from tests.e2e.test_crash_safety import StackStarter, process_stack, wait_until_ended
from tests.fixtures.gateway import namespace_name
from tests.webhooks.conftest import SECRET
from tests.webhooks.receiver import Receiver, running

__all__ = ["process_stack"]  # the fixture, shared with the crash-safety tests

ORDER = ["PENDING", "RUNNING", "TERMINATING", "SUCCEEDED"]
GATEWAY_WEBHOOKS = {
    "allow_http": True,
    "allow_networks": ["127.0.0.0/8"],
    "retry_schedule_seconds": [0, 0.3, 0.3, 0.5, 1, 1, 2, 2, 2, 2],
    "lease_seconds": 2,
    "poll_interval_seconds": 0.05,
}


@pytest.mark.e2e
async def test_every_completion_is_delivered_in_order_across_sigkills(
    process_stack: StackStarter,
) -> None:
    """30 runs, 3 SIGKILLs, a receiver failing first tries: all delivered, one id, in order."""
    receiver = Receiver(SECRET, fail_first=2)
    async with running(receiver):
        block = {"url": receiver.url, "secret_value": SECRET, "state_changes": True}
        stack = await process_stack(2, webhooks=(GATEWAY_WEBHOOKS, block))
        namespaces = [namespace_name(i) for i in range(2)]
        async with stack.client() as client:
            for n in range(30):
                await client.submit(namespaces[n % 2], spec(f"hook-{n}", seconds=0.5))
            for _ in range(3):
                await asyncio.sleep(1.0)
                await stack.crash_gateway()
        async with stack.client() as client:
            runs = await wait_until_ended(client, namespaces, within=60)
        assert all(is_terminal(r["state"]) for r in runs.values())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = {
                d.body["data"]["id"]
                for d in receiver.deliveries
                if d.body["type"] == "run.completed"
            }
            if done >= set(runs):
                break
            await asyncio.sleep(0.25)
        assert done >= set(runs), f"never delivered: {sorted(set(runs) - done)}"
        by_event: dict[tuple[int, str, str], set[str]] = {}
        for d in receiver.deliveries:
            key = (d.body["data"]["id"], d.body["type"], d.body["data"]["state"])
            by_event.setdefault(key, set()).add(d.webhook_id)
        assert all(len(ids) == 1 for ids in by_event.values())
        # Every try (failed ones included) carried the id of an event that was delivered.
        assert set(receiver.attempts) == set().union(*by_event.values())
        assert len(receiver.attempts) >= 3 * len(by_event)  # each event failed twice first
        for run_id in runs:
            seen = [d.body["data"]["state"] for d in receiver.deliveries
                    if d.body["data"]["id"] == run_id]  # fmt: skip
            firsts = list(dict.fromkeys(seen))
            ranks = [ORDER.index(s) if s in ORDER else len(ORDER) for s in firsts]
            assert ranks == sorted(ranks), f"run {run_id} out of order: {seen}"
        assert receiver.bad_signatures == 0
