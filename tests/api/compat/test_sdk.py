"""The official databricks-sdk, unchanged, with lakegate as its host and a ServiceAccount token
as its PAT: submit, wait, get, list, cancel and get-output work as against a workspace."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from aiohttp import web
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service import jobs

from tests.api.compat.conftest import TEAM_A, TEAM_B, CompatStack, in_thread
from tests.e2e.specs import spec

T = TypeVar("T")


def tasks(name: str, result: str = "SUCCESS", seconds: float = 0.2) -> list[jobs.SubmitTask]:
    return [jobs.SubmitTask.from_dict(t) for t in spec(name, result, seconds)["tasks"]]


async def eventually(read: Callable[[], list[T]], within: float = 10.0) -> list[T]:
    """``read()`` (in a thread) until it returns something, for at most ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            found = await in_thread(read)
            if found:
                return found
            await asyncio.sleep(0.1)


async def _ledger(stack: CompatStack, namespace: str) -> dict[int, Any]:
    from gateway.appkeys import RUNS

    page = await stack.gateway.app[RUNS].list(namespace, states=None, limit=100, cursor=None)
    return {run.id: run for run in page.runs}


@pytest.mark.parametrize("namespace", [TEAM_A, TEAM_B])
async def test_the_sdk_submits_waits_and_reads_a_run_as_its_namespace(
    compat_stack: CompatStack, namespace: str
) -> None:
    """submit(...).result() ends SUCCESS; the run id is lakegate's; Databricks ran it as the
    namespace's own principal (a PAT user or an OAuth service principal)."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(namespace)))
    name = f"sdk-{namespace}"
    waiter = await in_thread(lambda: w.jobs.submit(run_name=name, tasks=tasks(name)))
    done = await in_thread(lambda: waiter.result(timeout=timedelta(seconds=20)))

    assert done.state is not None
    assert done.state.result_state == jobs.RunResultState.SUCCESS
    ledger = await _ledger(stack, namespace)
    assert waiter.run_id in ledger
    [remote] = stack.remote_runs(name)
    assert remote["principal"] == stack.gateway.principal(namespace)
    run = ledger[waiter.run_id]
    assert remote["run_id"] == run.databricks_run_id != waiter.run_id
    assert done.run_id == done.number_in_job == done.original_attempt_run_id == waiter.run_id
    # Tasks keep Databricks' task run ids; the page URL is Databricks'.
    assert done.tasks is not None
    assert [t.task_key for t in done.tasks] == ["main"]
    assert done.tasks[0].run_id not in (None, waiter.run_id)
    assert done.run_page_url is not None
    assert done.run_page_url.endswith(f"/run/{run.databricks_run_id}")


async def test_a_failed_run_reads_failed_and_its_output_carries_the_error(
    compat_stack: CompatStack,
) -> None:
    """A failing task ends FAILED; get_run_output with the lakegate id reads its task's
    output, with Databricks' error and the parent named by the lakegate id."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    waiter = await in_thread(lambda: w.jobs.submit(run_name="fails", tasks=tasks("f", "FAILED")))
    done = await in_thread(lambda: waiter.result(timeout=timedelta(seconds=20)))
    assert done.state is not None
    assert done.state.result_state == jobs.RunResultState.FAILED

    output = await in_thread(lambda: w.jobs.get_run_output(waiter.run_id))
    assert output.error is not None
    assert "RUN_EXECUTION_ERROR" in output.error
    assert output.metadata is not None
    assert output.metadata.job_run_id == waiter.run_id
    assert done.tasks is not None
    task_run_id = done.tasks[0].run_id
    assert task_run_id is not None
    by_task = await in_thread(lambda: w.jobs.get_run_output(task_run_id))
    assert by_task.error == output.error


async def test_the_sdk_lists_the_namespaces_runs_newest_first(compat_stack: CompatStack) -> None:
    """list_runs pages through the namespace's ledger (limit 1: every page a request) and
    shows no other namespace's run; completed_only and active_only filter it."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    first = await in_thread(lambda: w.jobs.submit(run_name="one", tasks=tasks("one")))
    second = await in_thread(lambda: w.jobs.submit(run_name="two", tasks=tasks("two", seconds=30)))
    other = await in_thread(lambda: stack.sdk(stack.token(TEAM_B)))
    await in_thread(lambda: other.jobs.submit(run_name="theirs", tasks=tasks("theirs")))
    await in_thread(lambda: first.result(timeout=timedelta(seconds=20)))

    listed = await in_thread(lambda: list(w.jobs.list_runs(limit=1)))
    assert [run.run_id for run in listed] == [second.run_id, first.run_id]
    assert [run.run_name for run in listed] == ["two", "one"]
    # runs/list reads the ledger, which the poller brings up to date shortly after runs/get
    # (read from Databricks) shows the end.
    completed = await eventually(lambda: list(w.jobs.list_runs(completed_only=True)))
    assert [run.run_id for run in completed] == [first.run_id]
    active = await in_thread(lambda: list(w.jobs.list_runs(active_only=True)))
    assert [run.run_id for run in active] == [second.run_id]


async def test_the_sdk_cancels_a_run(compat_stack: CompatStack) -> None:
    """cancel_run(...).result() waits until Databricks has cancelled it."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_B)))
    waiter = await in_thread(
        lambda: w.jobs.submit(run_name="long", tasks=tasks("long", seconds=60))
    )
    done = await in_thread(
        lambda: w.jobs.cancel_run(waiter.run_id).result(timeout=timedelta(seconds=20))
    )
    assert done.state is not None
    assert done.state.result_state == jobs.RunResultState.CANCELED
    assert done.run_id == waiter.run_id


async def test_the_same_idempotency_token_returns_the_same_run(compat_stack: CompatStack) -> None:
    """An SDK retry with its idempotency_token finds the first run; Databricks has one."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))

    def submit() -> int:
        waiter = w.jobs.submit(run_name="once", tasks=tasks("once"), idempotency_token="retry-1")
        assert waiter.run_id is not None
        return waiter.run_id

    first, again = await in_thread(submit), await in_thread(submit)
    assert first == again
    assert len(stack.remote_runs("once")) == 1


@pytest.fixture
async def lossy_front(compat_stack: CompatStack) -> AsyncIterator[tuple[str, list[str]]]:
    """A proxy before the gateway that loses the gateway's first answer to runs/submit and
    says 503 instead, as a load balancer might: (its URL, the paths it forwarded)."""
    stack, forwarded, lost = compat_stack, [], []

    async def forward(request: web.Request) -> web.Response:
        keep = ("Authorization", "Content-Type", "X-Lakegate-Namespace")
        headers = {name: request.headers[name] for name in keep if name in request.headers}
        async with stack.http.request(
            request.method, stack.url + request.path_qs, data=await request.read(), headers=headers
        ) as resp:
            body, status = await resp.read(), resp.status
        forwarded.append(request.path)
        if request.path.endswith("/runs/submit") and not lost:
            lost.append(request.path)
            error = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Upstream went away."}
            return web.json_response(error, status=503, headers={"Retry-After": "1"})
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", forwarded
    finally:
        await runner.cleanup()


async def test_an_sdk_retry_after_a_lost_answer_finds_the_first_run(
    compat_stack: CompatStack, lossy_front: tuple[str, list[str]]
) -> None:
    """The gateway accepted the run but its answer was lost: the SDK retries with the same
    idempotency_token and gets the run the first attempt created; Databricks ran one."""
    stack, (front, forwarded) = compat_stack, lossy_front
    token = stack.token(TEAM_A)
    w = await in_thread(lambda: stack.sdk(token, host=front))
    waiter = await in_thread(
        lambda: w.jobs.submit(run_name="lost", tasks=tasks("lost"), idempotency_token="lost-1")
    )
    assert forwarded.count("/api/2.2/jobs/runs/submit") == 2
    assert list(await _ledger(stack, TEAM_A)) == [waiter.run_id]
    assert len(stack.remote_runs("lost")) == 1


@pytest.mark.parametrize("version", ["2.1", "2.2"])
async def test_both_api_versions_serve_the_same_runs(
    compat_stack: CompatStack, version: str
) -> None:
    """The SDK's own HTTP client on /api/2.1 and /api/2.2: submit, get and list agree."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    base = f"/api/{version}/jobs/runs"
    body = spec(f"v{version}")
    submitted = await in_thread(lambda: w.api_client.do("POST", f"{base}/submit", body=body))
    run_id = submitted["run_id"]
    got = await in_thread(lambda: w.api_client.do("GET", f"{base}/get", query={"run_id": run_id}))
    assert got["run_id"] == run_id
    assert got["run_name"] == f"v{version}"
    listed = await in_thread(lambda: w.api_client.do("GET", f"{base}/list"))
    assert [run["run_id"] for run in listed["runs"]] == [run_id]


# --- refusals, as the SDK raises them ------------------------------------------------------


async def test_an_unknown_run_and_another_namespaces_run_do_not_exist(
    compat_stack: CompatStack,
) -> None:
    """get_run of an id the namespace does not own raises ResourceDoesNotExist, the same
    whether the id is free or another namespace's: nothing is revealed."""
    stack = compat_stack
    theirs = await in_thread(lambda: stack.sdk(stack.token(TEAM_B)))
    waiter = await in_thread(lambda: theirs.jobs.submit(run_name="b", tasks=tasks("b")))
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    for run_id in (waiter.run_id, 987_654):
        with pytest.raises(ResourceDoesNotExist, match=f"Run {run_id} does not exist."):
            await in_thread(lambda run_id=run_id: w.jobs.get_run(run_id))
        with pytest.raises(InvalidParameterValue, match=f"Run {run_id} does not exist."):
            await in_thread(lambda run_id=run_id: w.jobs.cancel_run(run_id))
    assert waiter.run_id is not None


async def test_a_bad_token_is_unauthenticated(compat_stack: CompatStack) -> None:
    """A token TokenReview refuses raises Unauthenticated, not a lakegate problem."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk("not-a-service-account-token"))
    with pytest.raises(Unauthenticated):
        await in_thread(lambda: list(w.jobs.list_runs()))


async def test_a_spec_databricks_refuses_is_its_own_400(compat_stack: CompatStack) -> None:
    """Databricks' refusal of the spec reaches the SDK as InvalidParameterValue with
    Databricks' message, not as a run id that later turns out failed."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    broken = [jobs.SubmitTask(task_key="main")]  # no task type: Databricks refuses it
    with pytest.raises(InvalidParameterValue) as caught:
        await in_thread(lambda: w.jobs.submit(run_name="broken", tasks=broken))
    assert "Databricks" not in str(caught.value), "Databricks' own words, not lakegate's wrapping"
    assert stack.remote_runs("broken") == []


async def test_a_limit_over_25_is_databricks_refusal(compat_stack: CompatStack) -> None:
    """list_runs(limit=26) raises with Databricks' message."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    with pytest.raises(InvalidParameterValue, match="Invalid limit 26"):
        await in_thread(lambda: list(w.jobs.list_runs(limit=26)))


async def test_an_unknown_endpoint_is_databricks_404(compat_stack: CompatStack) -> None:
    """Jobs API calls the facade does not serve raise NotFound (ENDPOINT_NOT_FOUND)."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    with pytest.raises(NotFound, match=re.escape("No API found for 'GET /2.2/jobs/list'")):
        await in_thread(lambda: list(w.jobs.list()))


async def test_a_caller_outside_the_namespace_is_denied(compat_stack: CompatStack) -> None:
    """A ServiceAccount naming another namespace in X-Lakegate-Namespace raises
    PermissionDenied."""
    stack = compat_stack
    w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))

    def read_other() -> Any:
        headers = {"X-Lakegate-Namespace": TEAM_B}
        return w.api_client.do("GET", "/api/2.2/jobs/runs/list", headers=headers)

    with pytest.raises(PermissionDenied):
        await in_thread(read_other)
