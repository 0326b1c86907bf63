"""The run slice over real sockets: API -> service -> ledger -> Databricks emulator -> poller."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest

from gateway.app import Overrides
from gateway.cli.client import LakegateClient
from gateway.cli.errors import ApiError
from tests.e2e.specs import OUTCOMES, spec
from tests.fixtures.gateway import GatewayStack, StackFactory, namespace_name

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED", "INTERNAL_ERROR", "REJECTED"}


async def wait_all_terminal(
    client: LakegateClient, runs: list[tuple[str, int]], *, within: float
) -> dict[int, dict[str, Any]]:
    """Poll the gateway until every (namespace, id) is terminal; return the final runs."""
    final: dict[int, dict[str, Any]] = {}
    async with asyncio.timeout(within):
        while len(final) < len(runs):
            pending = [(ns, rid) for ns, rid in runs if rid not in final]
            fetched = await asyncio.gather(*(client.get(ns, rid) for ns, rid in pending[:200]))
            for run in fetched:
                if run["state"] in TERMINAL:
                    final[run["id"]] = dict(run)
            if len(final) < len(runs):
                await asyncio.sleep(0.2)
    return final


def assert_one_remote_run_each(stack: GatewayStack, final: dict[int, dict[str, Any]]) -> None:
    """Every ledger run that reached Databricks did so exactly once, as its own principal."""
    remote = stack.emulator.runs()
    tokens = Counter(r["idempotency_token"] for r in remote)
    assert all(count == 1 for count in tokens.values())
    by_id = {r["run_id"]: r for r in remote}
    reached = [run for run in final.values() if run["databricks_run_id"] is not None]
    assert len(by_id) == len(reached)
    for run in reached:
        assert by_id[run["databricks_run_id"]]["principal"] == stack.principal(run["namespace"])


@pytest.mark.e2e
async def test_500_runs_across_20_namespaces_reach_their_outcomes(
    gateway_stack_factory: StackFactory,
) -> None:
    """500 runs with mixed outcomes end in the right states, each with one Databricks run."""
    stack = await gateway_stack_factory(namespaces=20)
    client = stack.client()
    results = itertools.cycle(OUTCOMES)
    plan = [(namespace_name(i % 20), f"bulk-{i}", next(results)) for i in range(500)]
    gate = asyncio.Semaphore(50)

    async def submit(ns: str, name: str, result: str) -> tuple[str, int, str]:
        async with gate:
            submitted = await client.submit(ns, spec(name, result, seconds=1.0))
        return ns, submitted.run["id"], OUTCOMES[result]

    accepted = await asyncio.gather(*(submit(*item) for item in plan))
    final = await wait_all_terminal(client, [(ns, rid) for ns, rid, _ in accepted], within=90)
    for ns, rid, expected in accepted:
        assert final[rid]["state"] == expected, (ns, rid, final[rid])
    assert_one_remote_run_each(stack, final)
    assert len(stack.emulator.runs()) == 500


async def test_cancel_reaches_databricks_and_ends_canceled(
    gateway_stack_factory: StackFactory,
) -> None:
    """Cancelling a running run cancels it in Databricks and the run ends CANCELED."""
    stack = await gateway_stack_factory(namespaces=1)
    client = stack.client()
    ns = namespace_name(0)
    run = (await client.submit(ns, spec("long", seconds=120))).run
    cancelled = await client.cancel(ns, run["id"])
    assert cancelled["cancel_requested"] is True
    final = await wait_all_terminal(client, [(ns, run["id"])], within=15)
    assert final[run["id"]]["state"] == "CANCELED"
    remote = next(r for r in stack.emulator.runs() if r["run_id"] == run["databricks_run_id"])
    assert remote["life_cycle_state"] == "TERMINATED"
    assert remote["result_state"] == "CANCELED"


async def test_databricks_refusal_becomes_rejected_with_its_message(
    gateway_stack_factory: StackFactory,
) -> None:
    """A spec Databricks refuses is a 422 problem carrying the run's id and Databricks' own
    message; the run is stored REJECTED with it."""
    stack = await gateway_stack_factory(namespaces=1)
    bad = spec("bad")
    bad["tasks"][0]["spark_python_task"] = {"python_file": "x.py"}  # two task types
    with pytest.raises(ApiError) as info:
        await stack.client().submit(namespace_name(0), bad)
    assert info.value.status == 422
    assert "task" in (info.value.detail or "").lower()
    run = await stack.client().get(namespace_name(0), info.value.problem["run_id"])
    assert run["state"] == "REJECTED"
    assert "Databricks refused the run" in run["state_message"]
    assert "task" in run["state_message"].lower()
    assert stack.emulator.runs() == []


async def test_idempotency_key_returns_the_same_run_and_refuses_another_body(
    gateway_stack_factory: StackFactory,
) -> None:
    """The same key gives the same run (200); the same key with another body is a 409."""
    stack = await gateway_stack_factory(namespaces=1)
    client = stack.client()
    ns = namespace_name(0)
    first = await client.submit(ns, spec("idem"), idempotency_key="job-42")
    again = await client.submit(ns, spec("idem"), idempotency_key="job-42")
    assert (first.status, again.status) == (201, 200)
    assert again.run["id"] == first.run["id"]
    with pytest.raises(ApiError) as info:
        await client.submit(ns, spec("other"), idempotency_key="job-42")
    assert info.value.status == 409
    assert len(stack.emulator.runs()) == 1


async def test_unconfigured_namespace_is_refused_and_nothing_is_stored(
    gateway_stack_factory: StackFactory,
) -> None:
    """A namespace with no identity is refused with a message that says how to configure it."""
    stack = await gateway_stack_factory(namespaces=1)
    with pytest.raises(ApiError) as info:
        await stack.client().submit("nobody", spec("x"))
    assert info.value.status == 403
    assert "no Databricks identity" in info.value.detail
    assert stack.emulator.runs() == []


async def test_slow_databricks_answers_202_and_the_poller_finishes_the_submission(
    gateway_stack_factory: StackFactory,
) -> None:
    """When Databricks hangs, the caller gets 202 SUBMITTING and the run still lands once."""
    stack = await gateway_stack_factory(
        namespaces=1,
        overrides=Overrides(environ={}, poll_idle_seconds=0.05, inline_submit_seconds=0.5),
    )
    stack.emulator.fault(path="/api/*/jobs/runs/submit", action="hang", seconds=2, count=1)
    client = stack.client()
    ns = namespace_name(0)
    submitted = await client.submit(ns, spec("slow"))
    assert submitted.status == 202
    assert submitted.run["state"] == "SUBMITTING"
    final = await wait_all_terminal(client, [(ns, submitted.run["id"])], within=30)
    assert final[submitted.run["id"]]["state"] == "SUCCEEDED"
    assert_one_remote_run_each(stack, final)


@pytest.mark.e2e
async def test_a_fifth_of_calls_failing_fails_no_run(gateway_stack_factory: StackFactory) -> None:
    """With ~20% of Databricks calls answering 429/503 or dropping, every run still succeeds."""
    stack = await gateway_stack_factory(namespaces=6)
    for action in (
        {"action": "status", "status": 429, "retry_after": 1, "probability": 0.07},
        {"action": "status", "status": 503, "probability": 0.075},
        {"action": "drop", "probability": 0.04},
        {"action": "drop", "after": True, "probability": 0.04},
    ):
        stack.emulator.fault(path="/api/*", **action)
    client = stack.client()
    gate = asyncio.Semaphore(20)

    async def submit(i: int) -> tuple[str, int]:
        ns = namespace_name(i % 6)
        async with gate:
            submitted = await client.submit(ns, spec(f"faulty-{i}", seconds=1.0))
        return ns, submitted.run["id"]

    accepted = await asyncio.gather(*(submit(i) for i in range(120)))
    final = await wait_all_terminal(client, list(accepted), within=120)
    states = Counter(run["state"] for run in final.values())
    assert states == Counter({"SUCCEEDED": 120})
    assert_one_remote_run_each(stack, final)
    # About a fifth of the calls were faulted, so the test did exercise the retries.
    stats = stack.emulator.stats()
    assert stats["faults"]["injected"] >= stats["total"] // 10
