"""A run with 250 tasks through the facade: Databricks (the emulator at 2.2, as lakegate calls
it) pages them at 100; 2.0/2.1 clients get them all, 2.2 clients page through lakegate, and the
official SDK's get_run merges them, as against a workspace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.appkeys import RUNS
from gateway.model import RunState
from tests.api.compat.conftest import TEAM_A, CompatStack, in_thread

TASKS = 250
KEYS = [f"t{i:03d}" for i in range(TASKS)]


def long_spec(name: str) -> dict[str, Any]:
    task = {"existing_cluster_id": "0101-000000-test"}
    notebook = {
        "notebook_path": "/Shared/e2e",
        "base_parameters": {"lakegate_emulator_seconds": "0.2"},
    }
    tasks = [{"task_key": key, **task, "notebook_task": notebook} for key in KEYS]
    return {"run_name": name, "tasks": tasks}


async def call(
    stack: CompatStack, version: str, op: str, token: str, **params: Any
) -> dict[str, Any]:
    url = f"{stack.url}/api/{version}/jobs/runs/{op}"
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    async with stack.http.get(url, params=query, headers=stack.headers(token)) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body


async def submit(stack: CompatStack, token: str, name: str) -> int:
    url = f"{stack.url}/api/2.1/jobs/runs/submit"
    async with stack.http.post(url, json=long_spec(name), headers=stack.headers(token)) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return int(body["run_id"])


async def pages(stack: CompatStack, token: str, run_id: int) -> list[dict[str, Any]]:
    found = [await call(stack, "2.2", "get", token, run_id=run_id)]
    while "next_page_token" in found[-1]:
        token_ = found[-1]["next_page_token"]
        found.append(await call(stack, "2.2", "get", token, run_id=run_id, page_token=token_))
    return found


async def ended(stack: CompatStack, run_id: int, within: float = 20.0) -> RunState:
    async with asyncio.timeout(within):
        while True:
            run = await stack.gateway.app[RUNS].get(TEAM_A, run_id)
            if run.terminal:
                return run.state
            await asyncio.sleep(0.1)


@pytest.fixture
async def long_run(compat_stack: CompatStack) -> tuple[str, int]:
    token = compat_stack.token(TEAM_A)
    return token, await submit(compat_stack, token, "long-run")


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_a_2_0_or_2_1_client_gets_every_task_at_once(
    compat_stack: CompatStack, long_run: tuple[str, int], version: str
) -> None:
    """runs/get merges Databricks' three pages: 250 tasks in order, their own task run ids,
    no token; a page_token sent anyway changes nothing."""
    token, run_id = long_run
    run = await call(compat_stack, version, "get", token, run_id=run_id)
    assert [t["task_key"] for t in run["tasks"]] == KEYS
    assert len({t["run_id"] for t in run["tasks"]}) == TASKS
    assert "next_page_token" not in run
    again = await call(compat_stack, version, "get", token, run_id=run_id, page_token="x")
    assert [t["task_key"] for t in again["tasks"]] == KEYS


async def test_a_2_2_client_pages_through_lakegate(
    compat_stack: CompatStack, long_run: tuple[str, int]
) -> None:
    """2.2 answers 100, 100 and 50 tasks, Databricks' tokens handed on; the pages show
    lakegate's run id and together hold every task once."""
    token, run_id = long_run
    found = await pages(compat_stack, token, run_id)
    assert [len(p["tasks"]) for p in found] == [100, 100, 50]
    assert {p["run_id"] for p in found} == {run_id}
    assert [t["task_key"] for p in found for t in p["tasks"]] == KEYS


async def test_the_sdk_get_run_and_its_waiter_see_every_task(
    compat_stack: CompatStack, long_run: tuple[str, int]
) -> None:
    """The official SDK (Jobs API 2.2) follows the tokens through lakegate and merges them."""
    token, run_id = long_run
    w = await in_thread(lambda: compat_stack.sdk(token))
    run = await in_thread(lambda: w.jobs.get_run(run_id))
    assert run.tasks is not None
    assert [t.task_key for t in run.tasks] == KEYS


@pytest.mark.parametrize(
    ("version", "listed", "has_more"), [("2.1", 250, None), ("2.2", 100, True)]
)
async def test_runs_list_expands_every_task_or_the_first_100(
    compat_stack: CompatStack,
    long_run: tuple[str, int],
    version: str,
    listed: int,
    has_more: bool | None,
) -> None:
    """expand_tasks: 2.1 lists all 250, 2.2 the first 100 with has_more, as Databricks does."""
    token, run_id = long_run
    body = await call(compat_stack, version, "list", token, expand_tasks=True)
    [item] = [r for r in body["runs"] if r["run_id"] == run_id]
    assert len(item["tasks"]) == listed
    assert item.get("has_more") is has_more
    assert "next_page_token" not in item


async def test_an_ended_long_run_still_reads_whole_and_in_pages(
    compat_stack: CompatStack, long_run: tuple[str, int]
) -> None:
    """The poller follows the 250-task run to SUCCEEDED (the /v1 API says so); once ended,
    2.1 still gets every task and 2.2 still pages, however often asked: an ended run's
    answer is reused only when it fits one page, which this one does not."""
    token, run_id = long_run
    assert await ended(compat_stack, run_id) is RunState.SUCCEEDED
    url = f"{compat_stack.url}/v1/namespaces/{TEAM_A}/runs/{run_id}"
    async with compat_stack.http.get(url, headers=compat_stack.headers(token)) as resp:
        assert (resp.status, (await resp.json())["state"]) == (200, "SUCCEEDED")
    for _ in range(2):
        before = gets(compat_stack)
        whole = await call(compat_stack, "2.1", "get", token, run_id=run_id)
        assert len(whole["tasks"]) == TASKS
        assert whole["state"]["result_state"] == "SUCCESS"
        # Read again from Databricks each time: three pages.
        assert gets(compat_stack) - before == 3
        assert [len(p["tasks"]) for p in await pages(compat_stack, token, run_id)] == [100, 100, 50]


def gets(stack: CompatStack) -> int:
    """runs/get calls that reached Databricks so far."""
    requests = stack.gateway.emulator.stats()["requests"]
    return sum(r["count"] for r in requests if r["path"].endswith("/jobs/runs/get"))
