"""runs/list fidelity: each item is what runs/get shows (Databricks' job_id, state and times,
tasks with expand_tasks), never older; runs Databricks refused are not listed."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.app import Overrides
from gateway.appkeys import RUNS
from tests.api.compat.conftest import TEAM_A, CompatStack
from tests.api.compat.test_http import call, stack_settled
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack, StackFactory

LIST = "/api/2.1/jobs/runs/list"
GET = "/api/2.1/jobs/runs/get"
SUBMIT = "/api/2.1/jobs/runs/submit"


async def _json(stack: GatewayStack, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"X-Lakegate-Namespace": "team-00"}
    async with stack.session.request(method, stack.url + path, headers=headers, **kwargs) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_an_item_is_never_older_than_runs_get(gateway_stack_factory: StackFactory) -> None:
    """With the poller stopped the ledger still says the run is starting; Databricks has
    ended it. runs/list shows what runs/get shows: ended, with Databricks' job_id."""
    stack = await gateway_stack_factory(namespaces=1, overrides=Overrides(run_poller=False))
    submitted = await _json(stack, "POST", SUBMIT, json=spec("fresh", seconds=0.1))
    run_id = submitted["run_id"]
    async with asyncio.timeout(20):
        while True:
            got = await _json(stack, "GET", GET, params={"run_id": run_id})
            if got["state"]["life_cycle_state"] == "TERMINATED":
                break
            await asyncio.sleep(0.1)
    ledger = await stack.app[RUNS].get("team-00", run_id)
    assert not ledger.terminal
    [item] = (await _json(stack, "GET", LIST))["runs"]
    assert item["run_id"] == run_id
    assert item["state"] == got["state"]
    assert item["job_id"] == got["job_id"] != 0
    assert "tasks" not in item


async def test_expand_tasks_includes_each_run_s_tasks(compat_stack: CompatStack) -> None:
    """expand_tasks=true: the tasks runs/get shows, with their task run ids."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    resp, body = await call(stack, "POST", SUBMIT, token=token, json=spec("expanded", seconds=30))
    assert resp.status == 200, body
    async with asyncio.timeout(20):
        while True:
            resp, listed = await call(
                stack, "GET", LIST, token=token, params={"expand_tasks": "True"}
            )
            [item] = listed["runs"]
            if item.get("tasks"):
                break
            await asyncio.sleep(0.1)
    assert item["tasks"][0]["task_key"] == "main"
    assert isinstance(item["tasks"][0]["run_id"], int)


async def test_runs_databricks_refused_are_not_listed(compat_stack: CompatStack) -> None:
    """A submit Databricks refused was a 400 to the client, and stays that: no such run in
    runs/list, with or without completed_only."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    refused = {"run_name": "refused", "tasks": [{"task_key": "main", "notebook_task": {}}]}
    resp, body = await call(stack, "POST", SUBMIT, token=token, json=refused)
    assert resp.status == 400, body
    assert len(stack.gateway.emulator.runs()) == 0
    for params in ({}, {"completed_only": "true"}):
        resp, listed = await call(stack, "GET", LIST, token=token, params=params)
        assert listed == {"has_more": False}


async def test_a_page_of_ended_runs_is_read_from_databricks_once(
    compat_stack: CompatStack,
) -> None:
    """Ended runs' answers no longer change: listing them again costs no runs/get."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    resp, body = await call(stack, "POST", SUBMIT, token=token, json=spec("once", seconds=0.1))
    assert resp.status == 200, body
    await stack_settled(stack, body["run_id"])
    first = await call(stack, "GET", LIST, token=token)
    before = _gets(stack)
    assert before > 0
    again = await call(stack, "GET", LIST, token=token)
    assert _gets(stack) == before
    assert again[1] == first[1]
    assert again[1]["runs"][0]["state"]["result_state"] == "SUCCESS"


def _gets(stack: CompatStack) -> int:
    requests = stack.gateway.emulator.stats()["requests"]
    return sum(r["count"] for r in requests if r["path"].endswith("/jobs/runs/get"))
