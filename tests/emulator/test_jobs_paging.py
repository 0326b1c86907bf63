"""API 2.2 pages a run's arrays at 100, as Databricks does; 2.0 and 2.1 answer them whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.emulator._http import Api, notebook, open_api
from tests.fixtures.databricks_emulator import DatabricksEmulator

TASKS = 250


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


def clusters(count: int) -> list[dict[str, Any]]:
    return [
        {"job_cluster_key": f"c{i}", "new_cluster": {"spark_version": "15.4.x-scala2.12"}}
        for i in range(count)
    ]


async def pages(api: Api, run_id: int) -> list[dict[str, Any]]:
    """runs/get page after page, following next_page_token as the SDK does."""
    found = [await api.get(run_id)]
    while "next_page_token" in found[-1]:
        found.append(await api.get(run_id, page_token=found[-1]["next_page_token"]))
    return found


async def test_runs_get_pages_tasks_and_job_clusters_at_100(api: Api) -> None:
    """250 tasks and 120 job clusters: three pages of 100, 100 and 50 tasks; the clusters
    come 100 then 20 on the same pages; the last page has no token."""
    tasks = [notebook(f"t{i}") for i in range(TASKS)]
    run_id = await api.submit(tasks=tasks, job_clusters=clusters(120))
    found = await pages(api, run_id)
    assert [len(p["tasks"]) for p in found] == [100, 100, 50]
    assert [len(p.get("job_clusters", [])) for p in found] == [100, 20, 0]
    merged = [t["task_key"] for p in found for t in p["tasks"]]
    assert merged == [f"t{i}" for i in range(TASKS)]
    assert len({t["run_id"] for p in found for t in p["tasks"]}) == TASKS


async def test_more_job_clusters_than_tasks_still_page(api: Api) -> None:
    """The token stays while any array has more, even once the tasks are done."""
    run_id = await api.submit(tasks=[notebook("only")], job_clusters=clusters(150))
    found = await pages(api, run_id)
    assert [len(p["tasks"]) for p in found] == [1, 0]
    assert [len(p["job_clusters"]) for p in found] == [100, 50]


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_older_versions_answer_every_task_at_once(api: Api, version: str) -> None:
    """2.0 and 2.1 have no paging: all 250 tasks, no token."""
    run_id = await api.submit(tasks=[notebook(f"t{i}") for i in range(TASKS)])
    api.version = version
    run = await api.get(run_id)
    assert (len(run["tasks"]), "next_page_token" in run) == (TASKS, False)


async def test_list_2_2_cuts_expanded_tasks_at_100_and_says_has_more(api: Api) -> None:
    """runs/list with expand_tasks under 2.2: the first 100 tasks and has_more; no token of
    runs/get's own; a short run has no has_more."""
    long_run = await api.submit(tasks=[notebook(f"t{i}") for i in range(TASKS)])
    short_run = await api.submit()
    reply = await api.call("GET", "runs/list", params={"expand_tasks": "true"})
    items = {item["run_id"]: item for item in reply.body["runs"]}
    assert len(items[long_run]["tasks"]) == 100
    assert items[long_run]["has_more"] is True
    assert "next_page_token" not in items[long_run]
    assert "has_more" not in items[short_run]


async def test_list_2_1_expands_every_task(api: Api) -> None:
    """Under 2.1 an expanded item carries all its tasks."""
    run_id = await api.submit(tasks=[notebook(f"t{i}") for i in range(TASKS)])
    api.version = "2.1"
    reply = await api.call("GET", "runs/list", params={"expand_tasks": "true"})
    [item] = [r for r in reply.body["runs"] if r["run_id"] == run_id]
    assert (len(item["tasks"]), "has_more" in item) == (TASKS, False)


async def test_list_without_expand_tasks_shows_no_arrays(api: Api) -> None:
    """Without expand_tasks neither tasks nor job_clusters are listed."""
    await api.submit(job_clusters=clusters(3))
    reply = await api.call("GET", "runs/list")
    [item] = reply.body["runs"]
    assert "tasks" not in item
    assert "job_clusters" not in item
