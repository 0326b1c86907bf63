"""What real clients send and Databricks accepts, over real HTTP (reference section 9).

GET parameters in a JSON body (Airflow's async hook), the single-task submit shape (Airflow's
classic operators, flytekit), nulls for unset fields (prefect-databricks) and run ids as JSON
strings (the legacy CLI, flytekit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.emulator._http import CLUSTER_ID, Api, notebook, open_api, single_task
from tests.fixtures.databricks_emulator import DatabricksEmulator

NOTEBOOK = {"notebook_path": "/Shared/etl"}
MISSING_RUN_ID = {
    "error_code": "INVALID_PARAMETER_VALUE",
    "message": "Missing required field: run_id",
}


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


async def submit_single(api: Api, **body: Any) -> int:
    """Submit in the single-task shape: the body as given, with no tasks[]."""
    reply = await api.call("POST", "runs/submit", json=body)
    assert reply.status == 200, reply.body
    run_id: int = reply.body["run_id"]
    return run_id


async def task_run_id(api: Api, run_id: int) -> int:
    task_id: int = (await api.get(run_id))["tasks"][0]["run_id"]
    return task_id


# --- GET parameters in a JSON body ------------------------------------------------------------


async def test_runs_get_reads_run_id_from_a_json_body(api: Api) -> None:
    """GET runs/get with {"run_id": N} as its body and no query string shows run N."""
    run_id = await api.submit()
    reply = await api.call("GET", "runs/get", json={"run_id": run_id})
    assert reply.status == 200, reply.body
    assert reply.body["run_id"] == run_id


async def test_get_output_reads_run_id_from_a_json_body(api: Api) -> None:
    """GET runs/get-output with the task run id in a JSON body answers that task's output."""
    task_id = await task_run_id(api, await api.submit())
    reply = await api.call("GET", "runs/get-output", json={"run_id": task_id})
    assert reply.status == 200, reply.body
    assert reply.body["metadata"]["run_id"] == task_id


async def test_the_query_string_wins_over_the_body(api: Api) -> None:
    """When both name run_id, the query string's is the one answered."""
    first, second = await api.submit(), await api.submit()
    reply = await api.call("GET", "runs/get", params={"run_id": first}, json={"run_id": second})
    assert (reply.status, reply.body["run_id"]) == (200, first)


async def test_a_bad_body_beside_a_good_query_string_is_ignored(api: Api) -> None:
    """A body that is no JSON object does not spoil a run_id given in the query string."""
    run_id = await api.submit()
    reply = await api.call("GET", "runs/get", params={"run_id": run_id}, data="{not json")
    assert (reply.status, reply.body["run_id"]) == (200, run_id)


async def test_runs_list_reads_its_parameters_from_a_json_body(api: Api) -> None:
    """runs/list takes limit, active_only and expand_tasks from a JSON body too."""
    ids = [await api.submit() for _ in range(3)]
    reply = await api.call(
        "GET", "runs/list", json={"limit": 2, "active_only": True, "expand_tasks": True}
    )
    assert reply.status == 200, reply.body
    assert [r["run_id"] for r in reply.body["runs"]] == ids[:0:-1]
    assert reply.body["has_more"] is True
    assert all("tasks" in r for r in reply.body["runs"])


async def test_runs_list_checks_body_parameters_as_it_checks_the_query(api: Api) -> None:
    """A limit over the maximum is the same 400 from a body as from a query string."""
    reply = await api.call("GET", "runs/list", json={"limit": 26})
    assert (reply.status, reply.body["message"]) == (
        400,
        "Invalid limit 26 - it has to be no more than 25.",
    )


@pytest.mark.parametrize("path", ["runs/get", "runs/get-output"])
@pytest.mark.parametrize(
    "body",
    [None, "", "[1, 2]", "{not json", '"run_id"', '{"run_id": null}', '{"other": 1}'],
)
async def test_a_get_without_a_run_id_anywhere_is_a_missing_run_id(
    api: Api, path: str, body: str | None
) -> None:
    """No run_id in the query and none in a JSON object body: 400 'Missing required field'."""
    reply = await api.call("GET", path, data=body)
    assert (reply.status, reply.body) == (400, MISSING_RUN_ID)


# --- ids as strings ---------------------------------------------------------------------------


async def test_cancel_takes_a_run_id_given_as_a_string(api: Api) -> None:
    """runs/cancel with {"run_id": "<digits>"} cancels that run."""
    run_id = await api.submit()
    reply = await api.call("POST", "runs/cancel", json={"run_id": str(run_id)})
    assert (reply.status, reply.body) == (200, {})
    api.emulator.advance(10)
    assert (await api.get(run_id))["state"]["result_state"] == "CANCELED"


async def test_get_and_get_output_take_string_ids_from_a_body(api: Api) -> None:
    """A string of digits is a run id in the JSON body of runs/get and runs/get-output."""
    run_id = await api.submit()
    task_id = await task_run_id(api, run_id)
    got = await api.call("GET", "runs/get", json={"run_id": str(run_id)})
    output = await api.call("GET", "runs/get-output", json={"run_id": str(task_id)})
    assert (got.status, got.body["run_id"]) == (200, run_id)
    assert (output.status, output.body["metadata"]["run_id"]) == (200, task_id)


@pytest.mark.parametrize("run_id", ["12a", "1.5", "", " 7", "0x1f", True, 1.5, [7]])
@pytest.mark.parametrize(("method", "path"), [("POST", "runs/cancel"), ("GET", "runs/get")])
async def test_an_id_that_is_no_integer_is_refused(
    api: Api, method: str, path: str, run_id: object
) -> None:
    """A non-digit string, a boolean, a fraction or a list as run_id is a 400."""
    await api.submit()
    reply = await api.call(method, path, json={"run_id": run_id})
    assert reply.status == 400
    assert reply.body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "expected an integer" in reply.body["message"]


# --- the single-task shape of runs/submit -----------------------------------------------------


async def test_a_single_task_submit_runs_as_a_run_of_one_task(api: Api) -> None:
    """A top-level notebook_task with existing_cluster_id and libraries runs as one task."""
    libraries = [{"pypi": {"package": "requests==2.32.3"}}]
    run_id = await submit_single(
        api,
        run_name="nightly etl",
        notebook_task=NOTEBOOK,
        existing_cluster_id=CLUSTER_ID,
        libraries=libraries,
    )
    run = await api.get(run_id)
    [only] = run["tasks"]
    assert (only["task_key"], only["notebook_task"], only["libraries"]) == (
        "nightly_etl",
        NOTEBOOK,
        libraries,
    )
    assert only["existing_cluster_id"] == CLUSTER_ID
    assert run["format"] == "SINGLE_TASK"
    api.emulator.advance(100)
    done = await api.get(run_id)
    assert done["state"]["result_state"] == "SUCCESS"
    assert done["tasks"][0]["cluster_instance"]["cluster_id"] == CLUSTER_ID


async def test_a_single_task_spark_python_run_on_a_new_cluster(api: Api) -> None:
    """flytekit's classic body (spark_python_task, git_source, new_cluster) runs."""
    body = {
        "run_name": "flyte",
        "spark_python_task": {
            "python_file": "flytekitplugins/databricks/entrypoint.py",
            "source": "GIT",
            "parameters": ["pyflyte-execute", "--inputs", "s3://bucket/inputs.pb"],
        },
        "git_source": {
            "git_url": "https://github.com/flyteorg/flytetools",
            "git_provider": "gitHub",
            "git_commit": "572298df1f971fb58c258398bd70a6372f811c96",
        },
        "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1},
    }
    run = await api.get(await submit_single(api, **body))
    assert [t["spark_python_task"] for t in run["tasks"]] == [body["spark_python_task"]]
    assert run["tasks"][0]["new_cluster"] == body["new_cluster"]
    assert run["git_source"] == body["git_source"]


async def test_tasks_beside_a_top_level_task_type_is_refused(api: Api) -> None:
    """Both shapes at once is a 400 INVALID_PARAMETER_VALUE, and no run is created."""
    reply = await api.call(
        "POST", "runs/submit", json={"tasks": [notebook()], "notebook_task": NOTEBOOK}
    )
    assert (reply.status, reply.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert api.emulator.runs() == []


async def test_get_output_of_a_single_task_run_answers_for_its_task(api: Api) -> None:
    """The run id of a single-task run gives its task's output, with the run as metadata."""
    run_id = await submit_single(api, **single_task(lakegate_emulator_output="42"))
    api.emulator.advance(100)
    reply = await api.call("GET", "runs/get-output", params={"run_id": run_id})
    assert reply.status == 200, reply.body
    assert reply.body["notebook_output"] == {"result": "42", "truncated": False}
    assert reply.body["metadata"]["run_id"] == run_id


async def test_get_output_of_a_multi_task_run_with_one_task_is_still_refused(api: Api) -> None:
    """A run submitted with tasks[] of one task keeps the multi-task refusal."""
    reply = await api.call("GET", "runs/get-output", params={"run_id": await api.submit()})
    assert reply.status == 400
    assert "multiple tasks is not supported" in reply.body["message"]


# --- null for unset ---------------------------------------------------------------------------


async def test_a_submit_with_nulls_for_unset_fields_runs(api: Api) -> None:
    """prefect-databricks' body, every unset field null, runs and is shown without nulls."""
    task: dict[str, Any] = {
        "task_key": "main",
        "notebook_task": {**NOTEBOOK, "base_parameters": None, "source": None},
        "existing_cluster_id": CLUSTER_ID,
        "new_cluster": None,
        "libraries": None,
        "depends_on": None,
        "timeout_seconds": None,
    }
    for unset in ("spark_python_task", "spark_jar_task", "python_wheel_task", "sql_task"):
        task[unset] = None
    body = {
        "run_name": "prefect",
        "tasks": [task],
        "git_source": None,
        "timeout_seconds": None,
        "idempotency_token": None,
        "queue": None,
        "notebook_task": None,
        "spark_python_task": None,
    }
    reply = await api.call("POST", "runs/submit", json=body)
    assert reply.status == 200, reply.body
    run = await api.get(reply.body["run_id"])
    assert run["format"] == "MULTI_TASK"
    [shown] = run["tasks"]
    assert shown["notebook_task"] == NOTEBOOK
    assert not {"spark_python_task", "new_cluster", "libraries", "depends_on"} & set(shown)
    assert None not in shown.values()


async def test_nulls_are_absent_in_the_cancel_bodies(api: Api) -> None:
    """runs/cancel's null run_id is a missing one; runs/cancel-all ignores a null job_id."""
    cancel = await api.call("POST", "runs/cancel", json={"run_id": None})
    cancel_all = await api.call(
        "POST", "runs/cancel-all", json={"job_id": None, "all_queued_runs": True}
    )
    assert (cancel.status, cancel.body) == (400, MISSING_RUN_ID)
    assert (cancel_all.status, cancel_all.body) == (200, {})
