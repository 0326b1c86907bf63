"""What real clients send the facade, over real sockets, as Databricks accepts it.

The single-task submit shape (flytekit, Airflow's classic operators), GET parameters in a JSON
body (Airflow's async hook), nulls for unset fields (prefect-databricks), ids as strings and
the Jobs API 2.0 paths (the legacy databricks-cli).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.compat.conftest import TEAM_A, CompatStack
from tests.api.compat.test_http import assert_databricks_error, call

NOTEBOOK = {
    "notebook_path": "/Shared/e2e",
    "base_parameters": {
        "lakegate_emulator_result": "SUCCESS",
        "lakegate_emulator_seconds": "0.2",
        "lakegate_emulator_output": "done",
    },
}


def single_task(name: str) -> dict[str, Any]:
    return {"run_name": name, "notebook_task": NOTEBOOK, "existing_cluster_id": "0101-abc"}


async def ended(stack: CompatStack, version: str, run_id: Any, token: str) -> dict[str, Any]:
    """runs/get, with run_id in a JSON body, until the run has ended."""
    async with asyncio.timeout(20):
        while True:
            resp, body = await call(
                stack, "GET", f"/api/{version}/jobs/runs/get", token=token, json={"run_id": run_id}
            )
            assert resp.status == 200, body
            if body["state"]["life_cycle_state"] == "TERMINATED":
                return body
            await asyncio.sleep(0.1)


async def test_a_single_task_run_goes_to_databricks_as_sent_and_answers_for_its_output(
    compat_stack: CompatStack,
) -> None:
    """No tasks[]: Databricks runs it as one task; runs/get shows that task, and get-output
    of the run's own id answers with the notebook's result."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    resp, body = await call(
        stack, "POST", "/api/2.1/jobs/runs/submit", token=token, json=single_task("classic")
    )
    assert resp.status == 200, body
    run_id = body["run_id"]
    [remote] = stack.remote_runs("classic")
    assert remote["principal"] == stack.gateway.principal(TEAM_A)
    run = await ended(stack, "2.1", run_id, token)
    assert run["run_id"] == run_id
    assert [t["notebook_task"]["notebook_path"] for t in run["tasks"]] == ["/Shared/e2e"]
    resp, output = await call(
        stack, "GET", "/api/2.1/jobs/runs/get-output", token=token, json={"run_id": run_id}
    )
    assert resp.status == 200, output
    assert output["notebook_output"]["result"] == "done"


async def test_nulls_for_unset_fields_are_no_fields(compat_stack: CompatStack) -> None:
    """prefect-databricks' body, every unset task type null, is the run it would be without."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    body = {
        "run_name": "prefect",
        "idempotency_token": None,
        "git_source": None,
        "tasks": [
            {
                "task_key": "main",
                "existing_cluster_id": "0101-abc",
                "notebook_task": NOTEBOOK,
                "spark_python_task": None,
                "sql_task": None,
                "libraries": None,
            }
        ],
    }
    resp, answer = await call(stack, "POST", "/api/2.2/jobs/runs/submit", token=token, json=body)
    assert resp.status == 200, answer
    run = await ended(stack, "2.2", answer["run_id"], token)
    assert run["state"]["result_state"] == "SUCCESS"


async def test_the_legacy_cli_s_api_2_0_and_string_ids(compat_stack: CompatStack) -> None:
    """/api/2.0/jobs/runs/*: submit, get, list and cancel, run_id sent as a string."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    long = {**single_task("cli"), "notebook_task": {**NOTEBOOK, "base_parameters": {}}}
    long["notebook_task"]["base_parameters"] = {"lakegate_emulator_seconds": "60"}
    resp, body = await call(stack, "POST", "/api/2.0/jobs/runs/submit", token=token, json=long)
    assert resp.status == 200, body
    run_id = str(body["run_id"])
    resp, run = await call(
        stack, "GET", "/api/2.0/jobs/runs/get", token=token, params={"run_id": run_id}
    )
    assert (resp.status, run["run_id"]) == (200, int(run_id)), run
    resp, listed = await call(
        stack, "GET", "/api/2.0/jobs/runs/list", token=token, params={"limit": "26"}
    )
    assert resp.status == 200, listed
    assert [r["run_id"] for r in listed["runs"]] == [int(run_id)]
    resp, limit = await call(
        stack, "GET", "/api/2.1/jobs/runs/list", token=token, params={"limit": "26"}
    )
    assert_databricks_error(resp, limit, 400, "INVALID_PARAMETER_VALUE")
    resp, cancelled = await call(
        stack, "POST", "/api/2.0/jobs/runs/cancel", token=token, json={"run_id": run_id}
    )
    assert (resp.status, cancelled) == (200, {})
