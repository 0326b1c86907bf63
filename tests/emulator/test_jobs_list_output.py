"""runs/list and runs/get-output over real HTTP: filters, pages, booleans, task output."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulator._http import Api, notebook, open_api
from tests.fixtures.databricks_emulator import DatabricksEmulator


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


async def test_list_omits_runs_when_there_are_none(api: Api) -> None:
    """An empty list is {"has_more": false}, with no runs key."""
    reply = await api.call("GET", "runs/list")
    assert (reply.status, reply.body) == (200, {"has_more": False})


async def test_list_shows_only_the_callers_runs(api: Api) -> None:
    """Another principal's runs are not listed."""
    mine = await api.submit()
    await api.submit(token=api.emulator.other_pat)
    reply = await api.call("GET", "runs/list")
    assert [r["run_id"] for r in reply.body["runs"]] == [mine]


async def test_list_pages_with_opaque_tokens(api: Api) -> None:
    """limit and next_page_token/prev_page_token walk the runs newest first."""
    ids = [await api.submit() for _ in range(5)][::-1]
    first = await api.call("GET", "runs/list", params={"limit": "2"})
    assert [r["run_id"] for r in first.body["runs"]] == ids[:2]
    assert first.body["has_more"] is True
    assert "prev_page_token" not in first.body
    token = first.body["next_page_token"]
    assert str(ids[1]) not in token
    second = await api.call("GET", "runs/list", params={"limit": "2", "page_token": token})
    assert [r["run_id"] for r in second.body["runs"]] == ids[2:4]
    back = await api.call(
        "GET", "runs/list", params={"limit": "2", "page_token": second.body["prev_page_token"]}
    )
    assert [r["run_id"] for r in back.body["runs"]] == ids[:2]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "26"}, "Invalid limit 26 - it has to be no more than 25."),
        ({"limit": "-1"}, "Invalid limit -1 - it has to be no less than 0."),
        ({"active_only": "true", "completed_only": "true"}, "cannot both be true"),
        ({"active_only": "yes"}, "expected true or false"),
        ({"run_type": "NIGHTLY"}, "run_type"),
        ({"page_token": "not-a-token"}, "Invalid page token"),
    ],
)
async def test_list_refuses_bad_parameters(api: Api, params: dict[str, str], message: str) -> None:
    """Out-of-range limits and contradictory filters are INVALID_PARAMETER_VALUE."""
    reply = await api.call("GET", "runs/list", params=params)
    assert (reply.status, reply.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert message in reply.body["message"]


async def test_list_limit_zero_means_the_maximum(api: Api) -> None:
    """limit=0 returns up to 25 runs."""
    for _ in range(26):
        await api.submit()
    reply = await api.call("GET", "runs/list", params={"limit": "0"})
    assert (len(reply.body["runs"]), reply.body["has_more"]) == (25, True)


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE"])
async def test_list_booleans_are_case_insensitive(api: Api, spelling: str) -> None:
    """active_only=True (as Airflow sends it) works like true."""
    done = await api.submit()
    api.emulator.advance(100)
    active = await api.submit()
    reply = await api.call("GET", "runs/list", params={"active_only": spelling})
    assert [r["run_id"] for r in reply.body["runs"]] == [active]
    assert done != active


async def test_list_expands_tasks_only_when_asked(api: Api) -> None:
    """Runs in a list carry tasks only with expand_tasks=true."""
    await api.submit()
    plain = await api.call("GET", "runs/list")
    expanded = await api.call("GET", "runs/list", params={"expand_tasks": "true"})
    assert "tasks" not in plain.body["runs"][0]
    assert expanded.body["runs"][0]["tasks"][0]["task_key"] == "main"


async def test_list_filters_by_run_type(api: Api) -> None:
    """One-time runs are SUBMIT_RUNs; other run types list nothing."""
    await api.submit()
    submit_runs = await api.call("GET", "runs/list", params={"run_type": "SUBMIT_RUN"})
    job_runs = await api.call("GET", "runs/list", params={"run_type": "JOB_RUN"})
    assert len(submit_runs.body["runs"]) == 1
    assert job_runs.body == {"has_more": False}


async def test_get_output_of_a_task_run(api: Api) -> None:
    """get-output of a task run id gives its metadata and, once done, its notebook result."""
    run_id = await api.submit(tasks=[notebook(lakegate_emulator_output="42 rows")])
    task_run_id = (await api.get(run_id))["tasks"][0]["run_id"]
    api.emulator.advance(100)
    reply = await api.call("GET", "runs/get-output", params={"run_id": str(task_run_id)})
    assert reply.status == 200
    assert reply.body["metadata"]["run_id"] == task_run_id
    assert reply.body["notebook_output"] == {"result": "42 rows", "truncated": False}


async def test_get_output_of_a_failed_task_has_the_error(api: Api) -> None:
    """A failed task's output carries error and error_trace."""
    run_id = await api.submit(
        tasks=[
            {
                "task_key": "main",
                "spark_python_task": {
                    "python_file": "etl.py",
                    "parameters": ["lakegate_emulator_result=FAILED"],
                },
            }
        ]
    )
    task_run_id = (await api.get(run_id))["tasks"][0]["run_id"]
    api.emulator.advance(100)
    reply = await api.call("GET", "runs/get-output", params={"run_id": str(task_run_id)})
    assert reply.body["error"].startswith("RUN_EXECUTION_ERROR")
    assert "Traceback" in reply.body["error_trace"]
    assert "logs" in reply.body


async def test_get_output_of_a_parent_run_is_refused(api: Api) -> None:
    """get-output of a multi-task run's own id is the reference's 400."""
    run_id = await api.submit()
    reply = await api.call("GET", "runs/get-output", params={"run_id": str(run_id)})
    assert reply.status == 400
    assert reply.body["message"].startswith(
        "Retrieving the output of runs with multiple tasks is not supported."
    )


async def test_get_output_of_an_unknown_id(api: Api) -> None:
    """get-output of an unknown id does not exist."""
    reply = await api.call("GET", "runs/get-output", params={"run_id": "5"})
    assert (reply.status, reply.body["message"]) == (400, "Run 5 does not exist.")


async def test_api_2_2_pages_a_long_task_list(api: Api) -> None:
    """Under 2.2 runs/get returns 100 tasks and a next_page_token; 2.1 returns all."""
    run_id = await api.submit(tasks=[notebook(f"t{i}") for i in range(150)])
    first = await api.get(run_id)
    assert len(first["tasks"]) == 100
    rest = await api.get(run_id, page_token=first["next_page_token"])
    assert [t["task_key"] for t in rest["tasks"]] == [f"t{i}" for i in range(100, 150)]
    assert "next_page_token" not in rest
    api.version = "2.1"
    whole = await api.get(run_id)
    assert (len(whole["tasks"]), "next_page_token" in whole) == (150, False)
