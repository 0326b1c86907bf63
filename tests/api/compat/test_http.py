"""The facade over plain HTTP: what the SDK never sends, and what only headers show."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from databricks.sdk.service.jobs import Run, RunLifeCycleState

from gateway.appkeys import RUNS
from tests.api.compat.conftest import AIRFLOW, OPS, TEAM_A, TEAM_B, CompatStack, in_thread
from tests.e2e.specs import spec

SUBMIT = "/api/2.2/jobs/runs/submit"
GET = "/api/2.2/jobs/runs/get"


async def call(
    stack: CompatStack,
    method: str,
    path: str,
    *,
    token: str | None = None,
    namespace: str | None = None,
    **kwargs: Any,
) -> tuple[aiohttp.ClientResponse, Any]:
    headers = stack.headers(token, namespace) if token is not None else {}
    headers.update(kwargs.pop("headers", {}))
    async with stack.http.request(method, stack.url + path, headers=headers, **kwargs) as resp:
        return resp, await resp.json(content_type=None)


def assert_databricks_error(
    resp: aiohttp.ClientResponse, body: Any, status: int, code: str
) -> None:
    """Databricks' error shape, not problem+json, carrying the request id."""
    assert resp.status == status, body
    assert resp.content_type == "application/json"
    assert body["error_code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    [info] = body["details"]
    assert info["request_id"] == resp.headers["X-Request-Id"]


async def test_no_credential_is_databricks_401(compat_stack: CompatStack) -> None:
    """A request without a token is refused in Databricks' shape, as UNAUTHENTICATED."""
    resp, body = await call(compat_stack, "GET", "/api/2.1/jobs/runs/list")
    assert_databricks_error(resp, body, 401, "UNAUTHENTICATED")


async def test_a_body_that_is_not_json_is_malformed(compat_stack: CompatStack) -> None:
    """submit and cancel with a broken body: 400 MALFORMED_REQUEST."""
    token = compat_stack.token(TEAM_A)
    for path in (SUBMIT, "/api/2.1/jobs/runs/cancel"):
        resp, body = await call(compat_stack, "POST", path, token=token, data=b"{nope")
        assert_databricks_error(resp, body, 400, "MALFORMED_REQUEST")
    resp, body = await call(compat_stack, "POST", "/api/2.1/jobs/runs/cancel", token=token, json={})
    assert_databricks_error(resp, body, 400, "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Missing required field: run_id"


async def test_unknown_paths_and_methods_under_api_are_databricks_404s(
    compat_stack: CompatStack,
) -> None:
    """Another /api/ path, or a known one with another method: ENDPOINT_NOT_FOUND; /v1
    keeps its problem+json."""
    token = compat_stack.token(TEAM_A)
    resp, body = await call(compat_stack, "POST", "/api/2.0/clusters/create", token=token)
    assert_databricks_error(resp, body, 404, "ENDPOINT_NOT_FOUND")
    assert body["message"] == "No API found for 'POST /2.0/clusters/create'"
    resp, body = await call(compat_stack, "GET", SUBMIT, token=token)
    assert_databricks_error(resp, body, 404, "ENDPOINT_NOT_FOUND")
    resp, body = await call(compat_stack, "GET", "/v1/nowhere", token=token)
    assert resp.content_type == "application/problem+json"


async def test_a_shared_scheduler_names_the_namespace_in_a_header(
    compat_stack: CompatStack,
) -> None:
    """ops/airflow, granted both teams: X-Lakegate-Namespace picks one, and the run is that
    namespace's, under its principal; without the header it acts for its own namespace."""
    stack = compat_stack
    token = stack.token(OPS, AIRFLOW)
    resp, body = await call(
        stack, "POST", SUBMIT, token=token, namespace=TEAM_B, json=spec("shared")
    )
    assert resp.status == 200, body
    run = await stack.gateway.app[RUNS].get(TEAM_B, body["run_id"])
    [remote] = stack.remote_runs("shared")
    assert remote["principal"] == stack.gateway.principal(TEAM_B)
    assert remote["run_id"] == run.databricks_run_id
    # Its own namespace has no Databricks identity: refused before anything reaches Databricks.
    resp, body = await call(stack, "POST", SUBMIT, token=token, json=spec("own"))
    assert_databricks_error(resp, body, 403, "PERMISSION_DENIED")
    assert stack.remote_runs("own") == []


async def test_labels_ride_in_a_header(compat_stack: CompatStack) -> None:
    """X-Lakegate-Labels become the run's labels, as the /v1 API's labels do."""
    stack = compat_stack
    resp, body = await call(
        stack,
        "POST",
        SUBMIT,
        token=stack.token(TEAM_A),
        json=spec("labelled"),
        headers={"X-Lakegate-Labels": "team=etl,dag=nightly"},
    )
    assert resp.status == 200, body
    run = await stack.gateway.app[RUNS].get(TEAM_A, body["run_id"])
    assert dict(run.labels) == {"team": "etl", "dag": "nightly"}


async def test_a_run_lakegate_still_holds_is_queued_then_runs(compat_stack: CompatStack) -> None:
    """Databricks slow to accept: submit answers with the lakegate id anyway, runs/get says
    QUEUED with lakegate's reason, and the same id follows the run to its end."""
    stack = compat_stack
    # The inline submit gives up after 2 s; the poller's first resubmission hangs too, so the
    # run is still lakegate's (SUBMITTING) for seconds after the answer, however busy the box.
    stack.gateway.emulator.fault(path="/api/*/jobs/runs/submit", action="hang", seconds=5, count=2)
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    resp, body = await call(stack, "POST", SUBMIT, token=stack.token(TEAM_A), json=spec("slow"))
    assert resp.status == 200, body
    run_id = body["run_id"]
    held = await in_thread(lambda: w.jobs.get_run(run_id))
    assert held.state is not None
    assert held.state.life_cycle_state is not None
    assert held.state.life_cycle_state.value == "QUEUED"
    assert "lakegate" in (held.state.state_message or "")
    done = await until_ended(lambda: w.jobs.get_run(run_id))
    assert done.run_id == run_id
    assert done.state is not None
    assert done.state.result_state is not None
    assert done.state.result_state.value == "SUCCESS"
    assert len(stack.remote_runs("slow")) == 1


async def test_databricks_away_is_503_for_a_live_run_and_the_ledger_for_an_ended_one(
    compat_stack: CompatStack,
) -> None:
    """runs/get of a running run while Databricks fails: 503 TEMPORARILY_UNAVAILABLE with an
    integer Retry-After (the SDKs retry it); of an ended run: the ledger's account."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    w = await in_thread(lambda: stack.sdk(token))
    ended = await in_thread(lambda: w.jobs.submit_and_wait(run_name="e", tasks=_tasks("e")))
    assert ended.run_id is not None
    live = await in_thread(lambda: w.jobs.submit(run_name="l", tasks=_tasks("l", seconds=60)))
    await stack_settled(stack, ended.run_id)
    stack.gateway.emulator.fault(path="/api/*/jobs/runs/get", status=503, probability=1.0)

    resp, body = await call(stack, "GET", GET, token=token, params={"run_id": live.run_id})
    assert_databricks_error(resp, body, 503, "TEMPORARILY_UNAVAILABLE")
    assert resp.headers["Retry-After"].isdigit()
    resp, body = await call(stack, "GET", GET, token=token, params={"run_id": ended.run_id})
    assert resp.status == 200, body
    assert (body["run_id"], body["state"]["result_state"]) == (ended.run_id, "SUCCESS")


async def until_ended(read: Callable[[], Run]) -> Run:
    """Read the run every 0.1 s until it has ended (the SDK's own waiter backs off to 10 s)."""
    async with asyncio.timeout(20):
        while True:
            run = await in_thread(read)
            assert run.state is not None
            if run.state.life_cycle_state in (
                RunLifeCycleState.TERMINATED,
                RunLifeCycleState.SKIPPED,
            ):
                return run
            await asyncio.sleep(0.1)


def _tasks(name: str, seconds: float = 0.2) -> Any:
    from databricks.sdk.service import jobs

    return [jobs.SubmitTask.from_dict(t) for t in spec(name, seconds=seconds)["tasks"]]


async def stack_settled(stack: CompatStack, run_id: int) -> None:
    """Wait until the ledger (the poller) has recorded the end Databricks reported."""
    async with asyncio.timeout(10):
        while True:
            if (await stack.gateway.app[RUNS].get(TEAM_A, run_id)).terminal:
                return
            await asyncio.sleep(0.05)
