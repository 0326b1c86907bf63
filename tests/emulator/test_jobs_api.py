"""The Jobs API runs endpoints over real HTTP: shapes, errors, life cycle, listing, output."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from tests.emulator._http import Api, notebook, open_api
from tests.fixtures.databricks_emulator import DatabricksEmulator, EmulatorFactory, emulator_config

PAGE_URL = re.compile(r"^http://127\.0\.0\.1:\d+/\?o=5432109876543210#job/(\d+)/run/(\d+)$")


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


async def test_submit_answers_only_an_int64_run_id(api: Api) -> None:
    """runs/submit returns {"run_id": N} with N beyond 32 bits."""
    reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()]})
    assert reply.status == 200
    assert list(reply.body) == ["run_id"]
    assert reply.body["run_id"] > 2**32


async def test_a_new_run_has_the_observed_shape(api: Api) -> None:
    """runs/get of a fresh run: ids, times, both states, page URL, tasks with own run ids."""
    run_id = await api.submit(run_name="team-a/etl-42")
    run = await api.get(run_id)
    assert run["run_id"] == run["number_in_job"] == run["original_attempt_run_id"] == run_id
    assert (run["run_name"], run["run_type"], run["creator_user_name"]) == (
        "team-a/etl-42",
        "SUBMIT_RUN",
        api.emulator.user,
    )
    assert run["state"] == {
        "life_cycle_state": "PENDING",
        "state_message": "Waiting for cluster",
        "user_cancelled_or_timedout": False,
    }
    assert run["status"] == {"state": "PENDING"}
    assert run["end_time"] == 0
    assert abs(run["start_time"] - api.emulator.server.clock.now_ms()) < 5_000
    match = PAGE_URL.match(run["run_page_url"])
    assert match is not None
    assert (int(match[1]), int(match[2])) == (run["job_id"], run_id)
    [task] = run["tasks"]
    assert task["task_key"] == "main"
    assert task["run_id"] != run_id
    assert task["notebook_task"] == {"notebook_path": "/Shared/etl"}
    assert task["state"]["life_cycle_state"] == "PENDING"
    for absent in ("result_state", "termination_details", "cleanup_duration", "queue_duration"):
        assert absent not in run
        assert absent not in run["state"]


async def test_a_run_advances_with_the_clock(api: Api) -> None:
    """The emulator's clock drives PENDING -> RUNNING -> TERMINATING -> TERMINATED."""
    run_id = await api.submit()
    seen = []
    for step in (0, 10, 60, 5):
        api.emulator.advance(step)
        seen.append((await api.get(run_id))["state"]["life_cycle_state"])
    assert seen == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"]


async def test_a_terminated_run_reports_result_details_and_durations(api: Api) -> None:
    """A finished run has result_state, termination_details, end_time and its durations."""
    run_id = await api.submit()
    api.emulator.advance(100)
    run = await api.get(run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert run["status"] == {
        "state": "TERMINATED",
        "termination_details": {"code": "SUCCESS", "type": "SUCCESS", "message": ""},
    }
    assert run["end_time"] - run["start_time"] == run["run_duration"] == 75_000
    assert (run["setup_duration"], run["execution_duration"], run["cleanup_duration"]) == (
        10_000,
        60_000,
        5_000,
    )


async def test_a_task_asking_to_fail_fails_the_run(api: Api) -> None:
    """lakegate_emulator_result=FAILED ends the run FAILED with RUN_EXECUTION_ERROR."""
    run_id = await api.submit(tasks=[notebook(lakegate_emulator_result="FAILED")])
    api.emulator.advance(100)
    run = await api.get(run_id)
    assert run["state"]["result_state"] == "FAILED"
    assert run["status"]["termination_details"]["code"] == "RUN_EXECUTION_ERROR"


async def test_a_task_can_set_its_own_duration(api: Api) -> None:
    """lakegate_emulator_seconds sets how long the task runs."""
    run_id = await api.submit(tasks=[notebook(lakegate_emulator_seconds="1")])
    api.emulator.advance(16)
    assert (await api.get(run_id))["state"]["life_cycle_state"] == "TERMINATED"


async def test_timeout_seconds_times_the_run_out(api: Api) -> None:
    """A run longer than timeout_seconds ends TIMEDOUT."""
    run_id = await api.submit(timeout_seconds=20)
    api.emulator.advance(30)
    state = (await api.get(run_id))["state"]
    assert (state["result_state"], state["user_cancelled_or_timedout"]) == ("TIMEDOUT", True)


async def test_both_api_versions_serve_the_same_runs(api: Api) -> None:
    """A run submitted under 2.2 is read under 2.1, and the other way round."""
    run_id = await api.submit()
    api.version = "2.1"
    assert (await api.get(run_id))["run_id"] == run_id
    other = await api.submit()
    api.version = "2.2"
    assert (await api.get(other))["run_id"] == other


async def test_an_unknown_run_id_does_not_exist(api: Api) -> None:
    """runs/get of an unknown id: 400 INVALID_PARAMETER_VALUE 'Run <id> does not exist.'"""
    reply = await api.call("GET", "runs/get", params={"run_id": "123456789"})
    assert reply.status == 400
    assert reply.body == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Run 123456789 does not exist.",
    }


@pytest.mark.parametrize("params", [{}, {"run_id": "abc"}])
async def test_runs_get_needs_an_integer_run_id(api: Api, params: dict[str, str]) -> None:
    """A missing or non-integer run_id is INVALID_PARAMETER_VALUE."""
    reply = await api.call("GET", "runs/get", params=params)
    assert (reply.status, reply.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_a_task_run_id_gets_the_task_run(api: Api) -> None:
    """runs/get of a task run id shows that task run, tied to its parent by job_run_id."""
    run_id = await api.submit()
    task_run_id = (await api.get(run_id))["tasks"][0]["run_id"]
    task_run = await api.get(task_run_id)
    assert (task_run["run_id"], task_run["job_run_id"], task_run["task_key"]) == (
        task_run_id,
        run_id,
        "main",
    )


async def test_cancel_moves_through_terminating_to_canceled(api: Api) -> None:
    """runs/cancel answers {} and the run ends CANCELED by the user."""
    run_id = await api.submit()
    api.emulator.advance(15)
    reply = await api.call("POST", "runs/cancel", json={"run_id": run_id})
    assert (reply.status, reply.body) == (200, {})
    assert (await api.get(run_id))["state"]["life_cycle_state"] == "TERMINATING"
    api.emulator.advance(5)
    run = await api.get(run_id)
    assert run["state"]["result_state"] == "CANCELED"
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"


async def test_cancel_of_a_terminal_run_is_a_no_op(api: Api) -> None:
    """Cancelling a finished run answers {} and changes nothing."""
    run_id = await api.submit()
    api.emulator.advance(100)
    reply = await api.call("POST", "runs/cancel", json={"run_id": run_id})
    assert (reply.status, reply.body) == (200, {})
    assert (await api.get(run_id))["state"]["result_state"] == "SUCCESS"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"run_id": 77}, "INVALID_PARAMETER_VALUE"),
        ({}, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "77"}, "INVALID_PARAMETER_VALUE"),
        ("{oops", "MALFORMED_REQUEST"),
    ],
)
async def test_cancel_refuses_bad_or_unknown_ids(api: Api, body: object, code: str) -> None:
    """Cancel of an unknown, missing or mistyped id, or of garbage, is a 400."""
    if isinstance(body, str):
        reply = await api.call("POST", "runs/cancel", data=body)
    else:
        reply = await api.call("POST", "runs/cancel", json=body)
    assert (reply.status, reply.body["error_code"]) == (400, code)


async def test_cancel_all_cancels_the_callers_queued_runs(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """runs/cancel-all with all_queued_runs cancels queued runs; active ones carry on."""
    emulator = await databricks_emulator_factory(emulator_config(limits={"max_active_runs": 1}))
    async with open_api(emulator) as api:
        running = await api.submit()
        queued = await api.submit(queue={"enabled": True})
        reply = await api.call("POST", "runs/cancel-all", json={"all_queued_runs": True})
        assert (reply.status, reply.body) == (200, {})
        emulator.advance(6)
        assert (await api.get(queued))["state"]["result_state"] == "CANCELED"
        assert (await api.get(running))["state"]["life_cycle_state"] == "PENDING"


async def test_malformed_submit_bodies_are_refused(api: Api) -> None:
    """Non-JSON gets MALFORMED_REQUEST; a bad spec gets INVALID_PARAMETER_VALUE."""
    garbage = await api.call("POST", "runs/submit", data="{not json")
    assert (garbage.status, garbage.body["error_code"]) == (400, "MALFORMED_REQUEST")
    long_token = await api.call(
        "POST", "runs/submit", json={"tasks": [notebook()], "idempotency_token": "x" * 65}
    )
    assert (long_token.status, long_token.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "64" in long_token.body["message"]
    no_tasks = await api.call("POST", "runs/submit", json={"run_name": "x"})
    assert (no_tasks.status, no_tasks.body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert api.emulator.runs() == []


async def test_a_repeated_idempotency_token_creates_one_run(api: Api) -> None:
    """Submitting twice with one token returns the same run id; only one run exists."""
    first = await api.submit(idempotency_token="lg-01J9Z8K3Q4")
    second = await api.submit(idempotency_token="lg-01J9Z8K3Q4")
    assert first == second
    assert [r["run_id"] for r in api.emulator.runs()] == [first]


async def test_a_queued_run_shows_queue_details(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """At the active-run limit a queueing submit is QUEUED with queue_details."""
    emulator = await databricks_emulator_factory(emulator_config(limits={"max_active_runs": 1}))
    async with open_api(emulator) as api:
        await api.submit()
        queued = await api.get(await api.submit(queue={"enabled": True}))
        assert queued["state"]["life_cycle_state"] == "QUEUED"
        assert queued["status"]["state"] == "QUEUED"
        assert queued["status"]["queue_details"]["code"] == "ACTIVE_RUNS_LIMIT_REACHED"
        emulator.advance(75)
        admitted = await api.get(queued["run_id"])
        assert admitted["state"]["life_cycle_state"] == "PENDING"
        assert admitted["queue_duration"] > 70_000


@pytest.mark.parametrize(
    ("method", "path", "shown"),
    [
        ("POST", "runs/submitx", "POST /jobs/runs/submitx"),
        ("GET", "runs/submit", "GET /jobs/runs/submit"),
        ("GET", "/api/2.0/clusters/list", "GET /clusters/list"),
    ],
)
async def test_unknown_endpoints_are_not_found(
    api: Api, method: str, path: str, shown: str
) -> None:
    """Other paths, and known paths with the wrong method, get ENDPOINT_NOT_FOUND."""
    reply = await api.call(method, path)
    assert reply.status == 404
    assert reply.body == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": f"No API found for '{shown}'",
    }


async def test_a_request_without_a_token_is_unauthenticated(api: Api) -> None:
    """No Authorization header: 401 with the real workspace body."""
    reply = await api.call("GET", "runs/list", token=None)
    assert reply.status == 401
    assert reply.body["error_code"] == 401


async def test_a_bad_token_is_an_invalid_access_token(api: Api) -> None:
    """An unknown bearer token: the real 403 body and reason-phrase header."""
    reply = await api.call("GET", "runs/list", token="dapi-not-a-real-token")
    assert (reply.status, reply.body) == (
        403,
        {"error_code": 403, "message": "Invalid access token."},
    )
    assert reply.headers["X-Databricks-Reason-Phrase"] == "Invalid access token."


async def test_responses_carry_the_workspace_id(api: Api) -> None:
    """Authenticated answers carry X-Databricks-Org-Id."""
    reply = await api.call("GET", "runs/list")
    assert reply.headers["X-Databricks-Org-Id"] == "5432109876543210"


async def test_host_metadata_points_at_the_oidc_endpoints(api: Api) -> None:
    """/.well-known/databricks-config names the workspace, account and OIDC root."""
    reply = await api.call("GET", "/.well-known/databricks-config", token=None)
    assert reply.status == 200
    assert reply.body["oidc_endpoint"] == f"{api.emulator.url}/oidc"
    assert reply.body["workspace_id"] == "5432109876543210"


async def test_host_metadata_has_the_shape_of_a_workspace_host(api: Api) -> None:
    """Every field of the reference's host metadata, describing a workspace host."""
    reply = await api.call("GET", "/.well-known/databricks-config", token=None)
    account_id = reply.body["account_id"]
    assert reply.body == {
        "oidc_endpoint": f"{api.emulator.url}/oidc",
        "account_id": account_id,
        "workspace_id": "5432109876543210",
        "cloud": "AWS",
        "host_type": "workspace",
        "token_federation_default_oidc_audiences": [account_id],
    }
