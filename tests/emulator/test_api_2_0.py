"""Jobs API 2.0, the legacy databricks-cli's default, and clusters/spark-versions, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.emulator._http import Api, notebook, open_api, single_task
from tests.fixtures.databricks_emulator import DatabricksEmulator


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        api.version = "2.0"
        yield api


async def test_the_2_0_runs_endpoints_serve_a_run_from_submit_to_output(api: Api) -> None:
    """runs/submit, get, list, get-output and cancel all answer under /api/2.0/."""
    submitted = await api.call(
        "POST", "runs/submit", json=single_task("cli", lakegate_emulator_output="ok")
    )
    assert submitted.status == 200, submitted.body
    run_id = submitted.body["run_id"]
    run = await api.get(run_id)
    assert (run["run_id"], run["state"]["life_cycle_state"]) == (run_id, "PENDING")
    listed = await api.call("GET", "runs/list", params={"limit": "1"})
    assert [r["run_id"] for r in listed.body["runs"]] == [run_id]
    api.emulator.advance(100)
    output = await api.call("GET", "runs/get-output", params={"run_id": run_id})
    assert (output.status, output.body["notebook_output"]["result"]) == (200, "ok")
    cancel = await api.call("POST", "runs/cancel", json={"run_id": str(run_id)})
    assert (cancel.status, cancel.body) == (200, {})


async def test_a_run_submitted_under_2_0_is_the_same_run_under_2_1_and_2_2(api: Api) -> None:
    """The API versions are views of one workspace."""
    run_id = await api.submit()
    for version in ("2.1", "2.2"):
        api.version = version
        assert (await api.get(run_id))["run_id"] == run_id


@pytest.mark.parametrize(
    ("version", "limit", "status"),
    [("2.0", "26", 200), ("2.0", "27", 400), ("2.1", "26", 400), ("2.2", "26", 400)],
)
async def test_2_0_lists_up_to_26_runs_a_page(
    api: Api, version: str, limit: str, status: int
) -> None:
    """2.0 refuses a limit over 26 with the message the legacy CLI saw; 2.1 and 2.2 over 25."""
    api.version = version
    reply = await api.call("GET", "runs/list", params={"limit": limit})
    assert reply.status == status
    if status == 400:
        most = 26 if version == "2.0" else 25
        assert reply.body == {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"Invalid limit {limit} - it has to be no more than {most}.",
        }


async def test_2_0_limit_0_means_the_2_0_maximum(api: Api) -> None:
    """limit=0 under 2.0 lists 26 runs a page."""
    for _ in range(27):
        await api.submit()
    reply = await api.call("GET", "runs/list", params={"limit": "0"})
    assert (len(reply.body["runs"]), reply.body["has_more"]) == (26, True)


async def test_2_0_shows_every_task_of_a_run_at_once(api: Api) -> None:
    """Only 2.2 pages a run's tasks; 2.0 answers as 2.1 does, with all of them."""
    run_id = await api.submit(tasks=[notebook(f"t{i}") for i in range(130)])
    run = await api.get(run_id)
    assert len(run["tasks"]) == 130
    assert "next_page_token" not in run


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_spark_versions_lists_runtime_keys_and_names(api: Api, version: str) -> None:
    """GET clusters/spark-versions (Airflow's Test connection) answers {"versions": [...]}."""
    reply = await api.call("GET", f"/api/{version}/clusters/spark-versions")
    assert reply.status == 200
    versions = reply.body["versions"]
    assert versions
    assert all(set(v) == {"key", "name"} for v in versions)
    assert any(v["key"].endswith("-scala2.12") for v in versions)


async def test_spark_versions_needs_a_token(api: Api) -> None:
    """Like every /api/ path, spark-versions refuses a caller without a token."""
    reply = await api.call("GET", "/api/2.0/clusters/spark-versions", token=None)
    assert reply.status == 401
