"""For each tasks in the emulator, over real HTTP: iterations are task runs of their own,
paged at 100 under 2.2 (as the SDK's get_run merges them), whole under 2.0 and 2.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.emulator._http import Api, notebook, open_api
from tests.fixtures.databricks_emulator import DatabricksEmulator

ITERATIONS = 150


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


def for_each(
    inputs: Any, key: str = "loop", nested: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    task = nested or notebook("one", table="{{input}}")
    return {"task_key": key, "for_each_task": {"inputs": inputs, "task": task, **more}}


def tables(count: int = ITERATIONS) -> str:
    return json.dumps([f"table_{i}" for i in range(count)])


async def for_each_run_id(api: Api, run_id: int) -> int:
    (task,) = (await api.get(run_id))["tasks"]
    task_run_id: int = task["run_id"]
    return task_run_id


async def pages(api: Api, run_id: int) -> list[dict[str, Any]]:
    found = [await api.get(run_id)]
    while "next_page_token" in found[-1]:
        found.append(await api.get(run_id, page_token=found[-1]["next_page_token"]))
    return found


async def test_2_2_pages_150_iterations_at_100(api: Api) -> None:
    """runs/get of the for-each task run: 100 then 50 iterations, the for-each task alone
    on every page, each iteration its own task run with its input filled in."""
    run_id = await api.submit(tasks=[for_each(tables())])
    found = await pages(api, await for_each_run_id(api, run_id))

    assert [len(p["iterations"]) for p in found] == [100, 50]
    assert [[t["task_key"] for t in p["tasks"]] for p in found] == [["loop"], ["loop"]]
    iterations = [it for p in found for it in p["iterations"]]
    assert [it["notebook_task"]["base_parameters"]["table"] for it in iterations] == [
        f"table_{i}" for i in range(ITERATIONS)
    ]
    assert {it["task_key"] for it in iterations} == {"one"}
    assert len({it["run_id"] for it in iterations}) == ITERATIONS
    assert found[0]["job_run_id"] == run_id


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_older_versions_answer_every_iteration_at_once(api: Api, version: str) -> None:
    run_id = await api.submit(tasks=[for_each(tables())])
    task_run_id = await for_each_run_id(api, run_id)
    api.version = version
    answer = await api.get(task_run_id)
    assert (len(answer["iterations"]), "next_page_token" in answer) == (ITERATIONS, False)


async def test_the_job_run_lists_the_for_each_task_with_its_counts(
    api: Api, databricks_emulator: DatabricksEmulator
) -> None:
    """Iterations are not tasks of the job run; the for-each task counts them, and an
    iteration's own run id answers as a task run of the same run."""
    run_id = await api.submit(tasks=[for_each(tables(3)), notebook("after")])
    run = await api.get(run_id)
    assert [t["task_key"] for t in run["tasks"]] == ["loop", "after"]
    assert run["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]["total_iterations"] == 3

    databricks_emulator.advance(3600)
    run = await api.get(run_id)
    counts = run["tasks"][0]["for_each_task"]["stats"]["task_run_stats"]
    assert (counts["completed_iterations"], counts["succeeded_iterations"]) == (3, 3)
    iteration = (await api.get(run["tasks"][0]["run_id"]))["iterations"][2]
    alone = await api.get(iteration["run_id"])
    assert (alone["job_run_id"], alone["state"]["result_state"]) == (run_id, "SUCCESS")


async def test_a_nested_task_that_fails_fails_every_iteration(
    api: Api, databricks_emulator: DatabricksEmulator
) -> None:
    nested = notebook("one", lakegate_emulator_result="FAILED")
    run_id = await api.submit(tasks=[for_each(tables(2), nested=nested)])
    databricks_emulator.advance(3600)
    run = await api.get(run_id)
    assert run["state"]["result_state"] == "FAILED"
    answer = await api.get(run["tasks"][0]["run_id"])
    assert {it["state"]["result_state"] for it in answer["iterations"]} == {"FAILED"}
    reply = await api.call(
        "GET", "runs/get-output", params={"run_id": answer["iterations"][0]["run_id"]}
    )
    assert reply.status == 200
    assert "RUN_EXECUTION_ERROR" in reply.body["error"]


@pytest.mark.parametrize(
    ("task", "says"),
    [
        (for_each(None), "inputs is required"),
        (for_each('{"a": 1}'), "must be a JSON array"),
        (for_each("[1,"), "not valid JSON"),
        (for_each("{{tasks.prep.values.tables}}"), "literal JSON arrays only"),
        (for_each("[1]", concurrency=0), "concurrency"),
        (for_each("[1]", nested=for_each("[1]", key="inner")), "cannot be another for each"),
        ({"task_key": "loop", "for_each_task": {"inputs": "[1]"}}, "nested task"),
    ],
)
async def test_what_databricks_refuses_the_emulator_refuses(
    api: Api, task: dict[str, Any], says: str
) -> None:
    reply = await api.call("POST", "runs/submit", json={"tasks": [task]})
    assert reply.status == 400
    assert reply.body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert says in reply.body["message"]


async def test_the_sdk_merges_the_iteration_pages(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """databricks-sdk's own get_run, on the for-each task run id: all 150 iterations, the
    for-each task once (it merges iterations, not tasks, when iterations page)."""
    w = await asyncio.to_thread(databricks_emulator.sdk)
    async with open_api(databricks_emulator) as api:
        run_id = await api.submit(tasks=[for_each(tables())])
        task_run_id = await for_each_run_id(api, run_id)
    run = await asyncio.to_thread(lambda: w.jobs.get_run(task_run_id))
    assert len(run.iterations or []) == ITERATIONS
    assert [t.task_key for t in run.tasks or []] == ["loop"]
