"""A run with a for-each task of 150 iterations through the facade: lakegate follows the run
to its end; runs/get of the for-each task run gives a 2.0/2.1 client every iteration at once
(lakegate merging Databricks' 2.2 pages), a 2.2 client Databricks' pages of 100, and the
official SDK's get_run merges those pages through lakegate as against a workspace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.model import RunState
from tests.api.compat.conftest import TEAM_A, CompatStack, in_thread
from tests.api.compat.test_run_pages import call, ended

ITERATIONS = 150
TABLES = [f"table_{i:03d}" for i in range(ITERATIONS)]


def for_each_spec() -> dict[str, Any]:
    nested = {
        "task_key": "load",
        "existing_cluster_id": "0101-000000-test",
        "notebook_task": {
            "notebook_path": "/Shared/load",
            "base_parameters": {"table": "{{input}}", "lakegate_emulator_seconds": "0.2"},
        },
    }
    loop = {
        "task_key": "each_table",
        "for_each_task": {"inputs": json.dumps(TABLES), "concurrency": 10, "task": nested},
    }
    return {"run_name": "for-each", "tasks": [loop]}


async def submit(stack: CompatStack, token: str) -> int:
    url = f"{stack.url}/api/2.1/jobs/runs/submit"
    async with stack.http.post(url, json=for_each_spec(), headers=stack.headers(token)) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return int(body["run_id"])


def tables_of(iterations: list[dict[str, Any]]) -> list[str]:
    return [it["notebook_task"]["base_parameters"]["table"] for it in iterations]


@pytest.fixture
async def for_each_run(compat_stack: CompatStack) -> tuple[str, int, int]:
    """The token, lakegate's run id and the for-each task's run id."""
    token = compat_stack.token(TEAM_A)
    run_id = await submit(compat_stack, token)
    run = await call(compat_stack, "2.1", "get", token, run_id=run_id)
    (task,) = run["tasks"]
    return token, run_id, int(task["run_id"])


async def test_lakegate_follows_the_run_to_its_end(
    compat_stack: CompatStack, for_each_run: tuple[str, int, int]
) -> None:
    """The poller sees the for-each run through; the job run counts all 150 iterations."""
    token, run_id, _ = for_each_run
    assert await ended(compat_stack, run_id) is RunState.SUCCEEDED
    run = await call(compat_stack, "2.1", "get", token, run_id=run_id)
    counts = run["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]
    assert (counts["total_iterations"], counts["succeeded_iterations"]) == (150, 150)


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_a_2_0_or_2_1_client_sees_every_iteration(
    compat_stack: CompatStack, for_each_run: tuple[str, int, int], version: str
) -> None:
    token, run_id, task_run_id = for_each_run
    answer = await call(compat_stack, version, "get", token, run_id=task_run_id)
    assert tables_of(answer["iterations"]) == TABLES
    assert [t["task_key"] for t in answer["tasks"]] == ["each_table"]
    assert "next_page_token" not in answer
    assert answer["job_run_id"] == run_id


async def test_a_2_2_client_pages_the_iterations(
    compat_stack: CompatStack, for_each_run: tuple[str, int, int]
) -> None:
    token, run_id, task_run_id = for_each_run
    found = [await call(compat_stack, "2.2", "get", token, run_id=task_run_id)]
    while "next_page_token" in found[-1]:
        page_token = found[-1]["next_page_token"]
        found.append(
            await call(compat_stack, "2.2", "get", token, run_id=task_run_id, page_token=page_token)
        )
    assert [len(p["iterations"]) for p in found] == [100, 50]
    assert tables_of([it for p in found for it in p["iterations"]]) == TABLES
    assert {p["job_run_id"] for p in found} == {run_id}


async def test_the_sdk_get_run_merges_the_iterations(
    compat_stack: CompatStack, for_each_run: tuple[str, int, int]
) -> None:
    token, _, task_run_id = for_each_run
    w = await in_thread(lambda: compat_stack.sdk(token))
    run = await in_thread(lambda: w.jobs.get_run(task_run_id))
    assert [it.task_key for it in run.iterations or []] == ["load"] * ITERATIONS
    assert [t.task_key for t in run.tasks or []] == ["each_table"]
