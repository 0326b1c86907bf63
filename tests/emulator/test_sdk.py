"""The official databricks-sdk, unchanged, against the emulator: PAT and OAuth M2M.

The SDK is synchronous; each test runs its calls in a worker thread while the emulator
serves on the test's event loop. Clock advances replace waiting, so ``.result()`` finds the
run terminal on its first poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal, TypeVar

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.environments import Cloud
from databricks.sdk.errors import (
    InvalidParameterValue,
    OperationFailed,
    PermissionDenied,
    ResourceDoesNotExist,
)
from databricks.sdk.service import jobs

from tests.emulator._http import single_task
from tests.fixtures.databricks_emulator import DatabricksEmulator

T = TypeVar("T")
HOST_METADATA_WARNING = "Failed to automatically resolve config from host metadata"


def notebook_task(key: str = "main", **params: str) -> jobs.SubmitTask:
    return jobs.SubmitTask(
        task_key=key,
        notebook_task=jobs.NotebookTask(notebook_path="/Shared/etl", base_parameters=params),
    )


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


@pytest.mark.parametrize("auth", ["pat", "oauth"])
async def test_the_sdk_submits_and_waits_for_a_run(
    databricks_emulator: DatabricksEmulator, auth: Literal["pat", "oauth"]
) -> None:
    """w.jobs.submit(...).result() returns the terminated run, with either auth type."""
    emulator = databricks_emulator
    w = await in_thread(lambda: emulator.sdk(auth))
    waiter = await in_thread(lambda: w.jobs.submit(run_name="sdk", tasks=[notebook_task()]))
    run = await in_thread(lambda: w.jobs.get_run(waiter.run_id))
    assert run.state is not None
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.PENDING
    emulator.advance(100)
    done = await in_thread(waiter.result)
    assert done.state is not None
    assert done.state.result_state == jobs.RunResultState.SUCCESS
    assert done.status is not None
    assert done.status.state == jobs.RunLifecycleStateV2State.TERMINATED


async def test_an_oauth_run_records_the_service_principal(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A run submitted with OAuth M2M belongs to the SP, named by its application id."""
    emulator = databricks_emulator
    w = await in_thread(lambda: emulator.sdk("oauth"))
    waiter = await in_thread(lambda: w.jobs.submit(run_name="sp", tasks=[notebook_task()]))
    [record] = emulator.runs()
    assert (record["run_id"], record["principal"], record["application_id"]) == (
        waiter.run_id,
        emulator.sp_name,
        emulator.client_id,
    )
    run = await in_thread(lambda: w.jobs.get_run(waiter.run_id))
    assert run.creator_user_name == emulator.client_id
    issued = emulator.stats()["identity"]["tokens_issued"]["by_principal"]
    assert issued == {emulator.sp_name: 1}


async def test_the_sdk_cancels_a_run(databricks_emulator: DatabricksEmulator) -> None:
    """w.jobs.cancel_run(...).result() ends with a user-cancelled run."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    waiter = await in_thread(lambda: w.jobs.submit(run_name="c", tasks=[notebook_task()]))
    cancel = await in_thread(lambda: w.jobs.cancel_run(waiter.run_id))
    emulator.advance(5)
    run = await in_thread(cancel.result)
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert run.state.user_cancelled_or_timedout is True


async def test_the_sdk_waiter_raises_on_internal_error(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """An INTERNAL_ERROR run makes the SDK's waiter raise OperationFailed."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    task = notebook_task(lakegate_emulator_result="INTERNAL_ERROR")
    waiter = await in_thread(lambda: w.jobs.submit(run_name="boom", tasks=[task]))
    emulator.advance(100)
    with pytest.raises(OperationFailed, match="INTERNAL_ERROR"):
        await in_thread(waiter.result)


async def test_the_sdk_lists_every_page(databricks_emulator: DatabricksEmulator) -> None:
    """list_runs follows next_page_token through pages of two."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    submitted = [
        (await in_thread(lambda: w.jobs.submit(tasks=[notebook_task()]))).run_id for _ in range(5)
    ]
    listed = await in_thread(lambda: [r.run_id for r in w.jobs.list_runs(limit=2)])
    active = await in_thread(lambda: list(w.jobs.list_runs(active_only=True, limit=25)))
    assert listed == submitted[::-1]
    assert len(active) == 5


async def test_the_sdk_reads_a_long_task_list_across_pages(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """get_run merges the 2.2 task pages into one run."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    tasks = [notebook_task(f"t{i}") for i in range(130)]
    waiter = await in_thread(lambda: w.jobs.submit(tasks=tasks))
    run = await in_thread(lambda: w.jobs.get_run(waiter.run_id))
    assert [t.task_key for t in run.tasks or []] == [f"t{i}" for i in range(130)]


async def test_the_sdk_reads_task_output(databricks_emulator: DatabricksEmulator) -> None:
    """get_run_output of a task run gives its notebook result."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    task = notebook_task(lakegate_emulator_output="done")
    waiter = await in_thread(lambda: w.jobs.submit(tasks=[task]))
    emulator.advance(100)
    run = await in_thread(waiter.result)
    task_run_id = (run.tasks or [])[0].run_id
    assert task_run_id is not None
    output = await in_thread(lambda: w.jobs.get_run_output(task_run_id))
    assert output.notebook_output is not None
    assert output.notebook_output.result == "done"


async def test_the_sdk_maps_an_unknown_run_to_resource_does_not_exist(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """The SDK's own override turns our 400 into ResourceDoesNotExist."""
    w = await in_thread(databricks_emulator.sdk)
    with pytest.raises(ResourceDoesNotExist, match="Run 42 does not exist"):
        await in_thread(lambda: w.jobs.get_run(42))


async def test_the_sdk_maps_a_bad_spec_to_invalid_parameter_value(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A duplicated task key is InvalidParameterValue in the SDK."""
    w = await in_thread(databricks_emulator.sdk)
    with pytest.raises(InvalidParameterValue, match="duplicated"):
        await in_thread(lambda: w.jobs.submit(tasks=[notebook_task(), notebook_task()]))


async def test_the_sdk_sees_a_bad_token_as_permission_denied(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A revoked PAT gets the 403 'Invalid access token.' the SDK knows."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    emulator.server.identity.revoke_token(emulator.pat)
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        await in_thread(lambda: list(w.jobs.list_runs()))


async def test_the_sdk_retries_through_a_429(databricks_emulator: DatabricksEmulator) -> None:
    """A 429 with Retry-After is retried by the SDK, and the run is created once."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    emulator.fault(path="/api/*/jobs/runs/submit", status=429, retry_after=1, count=1)
    waiter = await in_thread(lambda: w.jobs.submit(tasks=[notebook_task()]))
    assert [r["run_id"] for r in emulator.runs()] == [waiter.run_id]


async def test_a_lost_submit_response_is_retried_into_the_same_run(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """After a dropped answer the SDK's retry with the same token gets the first run."""
    emulator = databricks_emulator
    w: WorkspaceClient = await in_thread(emulator.sdk)
    emulator.fault(path="/api/*/jobs/runs/submit", action="drop", after=True, count=1)
    waiter = await in_thread(
        lambda: w.jobs.submit(tasks=[notebook_task()], idempotency_token="lakegate-ledger-1")
    )
    [record] = emulator.runs()
    assert record["run_id"] == waiter.run_id
    submits = emulator.stats()["requests"]
    assert [r["status"] for r in submits if r["path"].endswith("/submit")] == ["200", "dropped"]


def sdk_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("databricks.sdk")]


async def test_the_sdk_starts_without_a_host_metadata_warning(
    databricks_emulator: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Config init reads /.well-known/databricks-config, resolves from it and warns of nothing."""
    caplog.set_level(logging.WARNING, logger="databricks.sdk")
    w = await in_thread(databricks_emulator.sdk)
    assert sdk_warnings(caplog) == []
    assert (w.config.workspace_id, w.config.cloud) == ("5432109876543210", Cloud.AWS)
    assert w.config.discovery_url == (
        f"{databricks_emulator.url}/oidc/.well-known/oauth-authorization-server"
    )


async def test_a_failing_host_metadata_is_the_warning_the_test_above_looks_for(
    databricks_emulator: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """With the endpoint answering 404 the SDK logs that warning, so its absence means 200."""
    caplog.set_level(logging.WARNING, logger="databricks.sdk")
    databricks_emulator.fault(path="/.well-known/databricks-config", status=404, count=1)
    await in_thread(databricks_emulator.sdk)
    assert any(HOST_METADATA_WARNING in m for m in sdk_warnings(caplog))


async def test_the_sdk_lists_spark_versions(databricks_emulator: DatabricksEmulator) -> None:
    """w.clusters.spark_versions() parses the emulator's runtime list."""
    w = await in_thread(databricks_emulator.sdk)
    versions = await in_thread(w.clusters.spark_versions)
    assert [v.key for v in versions.versions or []]
    assert all(v.name for v in versions.versions or [])


async def test_the_sdk_follows_a_single_task_run(databricks_emulator: DatabricksEmulator) -> None:
    """A run submitted in the single-task shape is one the SDK waits for and reads output of."""
    emulator = databricks_emulator
    w = await in_thread(emulator.sdk)
    body = single_task("classic", lakegate_emulator_output="done")
    submitted = await in_thread(
        lambda: w.api_client.do("POST", "/api/2.1/jobs/runs/submit", body=body)
    )
    assert isinstance(submitted, dict)
    run_id = submitted["run_id"]
    emulator.advance(100)
    run = await in_thread(lambda: w.jobs.wait_get_run_job_terminated_or_skipped(run_id))
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert [t.task_key for t in run.tasks or []] == ["classic"]
    output = await in_thread(lambda: w.jobs.get_run_output(run_id))
    assert output.notebook_output is not None
    assert output.notebook_output.result == "done"
