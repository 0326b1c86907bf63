"""Quotas through the whole stack: 429s that heal, the quota view, a limit that holds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fixtures.gateway import GatewayStack, StackFactory, namespace_name

RUNS = 1000
SPEC: dict[str, Any] = {
    "run_name": "quota",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Repos/etl/main"}}],
}


async def _post(stack: GatewayStack, namespace: str) -> tuple[int, dict[str, Any], Any]:
    url = f"{stack.url}/v1/namespaces/{namespace}/runs"
    async with stack.session.post(url, json={"spec": SPEC}) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def _quota(stack: GatewayStack, namespace: str) -> dict[str, Any]:
    async with stack.session.get(f"{stack.url}/v1/namespaces/{namespace}/quota") as resp:
        assert resp.status == 200
        view: dict[str, Any] = await resp.json()
        return view


async def test_over_rate_is_429_naming_the_limit_and_a_retry_after_it_succeeds(
    gateway_stack_factory: StackFactory,
) -> None:
    """The request past the burst gets problem+json 429 with Retry-After; after it, 2xx."""
    stack = await gateway_stack_factory(
        namespaces=1, quotas={"submissions_per_minute": 60, "burst": 2}
    )
    ns = namespace_name(0)
    assert [(await _post(stack, ns))[0] for _ in range(2)] == [201, 201]
    status, headers, problem = await _post(stack, ns)
    assert status == 429
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["limit"] == "submissions_per_minute"
    assert (problem["value"], problem["usage"]) == (60, 2)
    wait = int(headers["Retry-After"])
    assert 1 <= wait <= 2
    await asyncio.sleep(wait)
    assert (await _post(stack, ns))[0] in (201, 202)


async def test_a_full_queue_is_429_and_the_quota_view_shows_the_queue(
    gateway_stack_factory: StackFactory,
) -> None:
    """With one active and one queued, the next is 429 max_queued_runs; /quota shows both."""
    stack = await gateway_stack_factory(
        namespaces=1,
        quotas={"max_active_runs": 1, "max_queued_runs": 1, "paused": False},
        emulator={"lifecycle": {"running_seconds": 30.0}},
    )
    ns = namespace_name(0)
    assert (await _post(stack, ns))[0] == 201
    assert (await _post(stack, ns))[0] == 202
    status, headers, problem = await _post(stack, ns)
    assert (status, problem["limit"], problem["usage"]) == (429, "max_queued_runs", 1)
    assert int(headers["Retry-After"]) >= 1
    view = await _quota(stack, ns)
    assert (view["usage"]["active"], view["usage"]["queued"]) == (1, 1)
    assert view["limits"]["max_active_runs"] == 1
    assert [entry["position"] for entry in view["queue"]] == [1]
    assert view["paused"] is False


@pytest.mark.e2e
@pytest.mark.timeout(150)
async def test_1000_runs_under_max_5_active_never_have_more_than_5_in_databricks(
    gateway_stack_factory: StackFactory,
) -> None:
    """Sampled at the emulator throughout, no more than 5 runs are active; all 1,000 end."""
    stack = await gateway_stack_factory(
        namespaces=1,
        quotas={"max_active_runs": 5, "max_queued_runs": 1000, "burst": 1000},
        emulator={
            "lifecycle": {"pending_seconds": 0.05, "running_seconds": 0.1, "terminating_seconds": 0}
        },
        gateway={"poller": {"min_interval_seconds": 0.02, "max_interval_seconds": 0.05}},
    )
    ns = namespace_name(0)
    peak = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            runs = stack.emulator.stats()["runs"]
            peak = max(peak, runs["active"] + runs["queued"])
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    gate = asyncio.Semaphore(50)

    async def one() -> int:
        async with gate:
            status, _, run = await _post(stack, ns)
            assert status in (201, 202), run
            return int(run["id"])

    ids = await asyncio.gather(*(one() for _ in range(RUNS)))
    async with asyncio.timeout(120):
        while True:
            usage = (await _quota(stack, ns))["usage"]
            if usage["active"] + usage["queued"] == 0:
                break
            await asyncio.sleep(0.5)
    done.set()
    await sampler
    final = [run async for run in stack.client().iter_runs(ns, page_size=500)]
    assert peak <= 5
    assert sorted(run["id"] for run in final) == sorted(ids)
    assert {run["state"] for run in final} == {"SUCCEEDED"}
    assert len(stack.emulator.runs()) == RUNS
