"""JobsClient's HTTP edge: requests as sent, answers and failures as translated."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from structlog.testing import capture_logs

from gateway import __version__
from gateway.databricks.jobs import JobsClient, Workspace
from gateway.databricks.retries import RetryPolicy
from gateway.errors import (
    DatabricksAuthError,
    DatabricksError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRunNotFound,
    DatabricksUnavailable,
)
from gateway.settings import DatabricksSettings, WorkspaceSettings
from tests.databricks.scripted import Reply, ScriptedServer
from tests.support.clock import Sleeps

SUBMIT = "/api/2.2/jobs/runs/submit"
GET = "/api/2.2/jobs/runs/get"
LIST = "/api/2.2/jobs/runs/list"
SPEC = {"run_name": "r", "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/n"}}]}
RUN = {
    "run_id": 7,
    "run_page_url": "https://h/#job/1/run/7",
    "state": {"life_cycle_state": "RUNNING"},
    "status": {"state": "RUNNING"},
}


class Tokens:
    """A credential that hands out tok-1, tok-2, ... moving on when its token is invalidated."""

    def __init__(self) -> None:
        self.generation = 1
        self.invalidated: list[str] = []

    async def token(self) -> str:
        return f"tok-{self.generation}"

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == f"tok-{self.generation}":
            self.generation += 1


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def calls() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def client(
    session: aiohttp.ClientSession, sleeps: Sleeps, calls: list[tuple[str, str]]
) -> JobsClient:
    return JobsClient(
        session,
        retry=RetryPolicy(deadline=10, initial=0.01, maximum=0.05, sleep=sleeps),
        timeout=aiohttp.ClientTimeout(total=0.5),
        on_call=lambda endpoint, outcome, _seconds: calls.append((endpoint, outcome)),
    )


@pytest.fixture
def ws(server: ScriptedServer) -> Workspace:
    return Workspace(server.url, "2.2", 4)


# --- workspaces -----------------------------------------------------------------------------


def test_workspace_from_settings() -> None:
    """A workspace from the allow-list keeps its host, API version and cap."""
    settings = WorkspaceSettings(
        host="https://adb-1.2.azuredatabricks.net/", api_version="2.1", max_concurrent_requests=3
    )
    assert Workspace.from_settings(settings) == Workspace(
        "https://adb-1.2.azuredatabricks.net", "2.1", 3
    )


@pytest.mark.parametrize(
    ("api_version", "cap", "problem"),
    [("2.0", 1, "is not 2.1 or 2.2"), ("2.2", 0, "must be at least 1")],
)
def test_workspace_refuses_unknown_versions_and_no_capacity(
    api_version: str, cap: int, problem: str
) -> None:
    """Only API 2.1 and 2.2 exist for one-time runs, and a cap of 0 would block every call."""
    with pytest.raises(ValueError, match=problem):
        Workspace("https://h", api_version, cap)


async def test_client_from_settings_applies_timeout_and_deadline(
    session: aiohttp.ClientSession, server: ScriptedServer, ws: Workspace
) -> None:
    """A client built from settings cuts a hang at the request timeout and stops at the deadline."""
    settings = DatabricksSettings(
        request_timeout_seconds=0.1,
        retry_deadline_seconds=0.25,
        retry_initial_seconds=0.01,
        retry_max_seconds=0.01,
    )
    client = JobsClient.from_settings(session, settings)
    server.always("GET", GET, Reply(action="hang", delay=5))
    with pytest.raises(DatabricksUnavailable, match="timed out"):
        await client.get(ws, Tokens(), 7)
    assert 2 <= len(server.requests("GET", GET)) <= 4


# --- requests as sent -----------------------------------------------------------------------


async def test_submit_sends_the_spec_with_token_and_headers(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/submit posts JSON with the idempotency token, bearer token and our User-Agent."""
    server.script("POST", SUBMIT, Reply(json={"run_id": 455644833}))
    assert await client.submit(ws, Tokens(), SPEC, idempotency_token="lg-x-1") == 455644833
    (seen,) = server.requests("POST", SUBMIT)
    assert seen.json() == {**SPEC, "idempotency_token": "lg-x-1"}
    assert seen.headers["Authorization"] == "Bearer tok-1"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["User-Agent"] == f"lakegate/{__version__}"


async def test_paths_follow_the_workspace_api_version(
    client: JobsClient, server: ScriptedServer
) -> None:
    """A 2.1 workspace is called under /api/2.1."""
    server.script("GET", "/api/2.1/jobs/runs/get", Reply(json=RUN))
    snap = await client.get(Workspace(server.url, "2.1"), Tokens(), 7)
    assert snap.run_id == 7


async def test_get_parses_the_snapshot(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/get asks for the run id and returns a RunSnapshot."""
    server.script("GET", GET, Reply(json=RUN))
    snap = await client.get(ws, Tokens(), 7)
    assert (snap.run_id, snap.status.life_cycle_state) == (7, "RUNNING")
    assert snap.run_page_url == RUN["run_page_url"]
    assert server.requests("GET", GET)[0].query == {"run_id": "7"}


async def test_cancel_posts_the_run_id(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/cancel sends {"run_id": N} and accepts {}."""
    server.script("POST", "/api/2.2/jobs/runs/cancel", Reply(json={}))
    await client.cancel(ws, Tokens(), 7)
    assert server.requests("POST", "/api/2.2/jobs/runs/cancel")[0].json() == {"run_id": 7}


async def test_get_output_returns_the_payload(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/get-output comes back as Databricks sent it."""
    payload = {"notebook_output": {"result": "42"}, "metadata": RUN}
    server.script("GET", "/api/2.2/jobs/runs/get-output", Reply(json=payload))
    assert await client.get_output(ws, Tokens(), 8) == payload


async def test_list_sends_filters_as_query(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/list booleans go as 'true'; filters and the page token are passed on."""
    server.script("GET", LIST, Reply(json={"runs": [RUN], "has_more": False}))
    page = await client.list(
        ws,
        Tokens(),
        active_only=True,
        run_type="SUBMIT_RUN",
        limit=10,
        page_token="p2",
        start_time_from=1767225600000,
    )
    assert [r.run_id for r in page.runs] == [7]
    assert server.requests("GET", LIST)[0].query == {
        "limit": "10",
        "active_only": "true",
        "run_type": "SUBMIT_RUN",
        "page_token": "p2",
        "start_time_from": "1767225600000",
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"active_only": True, "completed_only": True}, {"limit": 0}, {"limit": 26}],
)
async def test_list_refuses_impossible_queries(
    client: JobsClient, server: ScriptedServer, ws: Workspace, kwargs: dict[str, Any]
) -> None:
    """Both filters at once, or a limit outside 1-25, never leave the process."""
    with pytest.raises(ValueError, match="runs/list"):
        await client.list(ws, Tokens(), **kwargs)
    assert server.seen == []


async def test_list_all_follows_page_tokens(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """list_all walks next_page_token until there is none."""
    server.script(
        "GET",
        LIST,
        Reply(json={"runs": [RUN], "has_more": True, "next_page_token": "p2"}),
        Reply(json={"runs": [{**RUN, "run_id": 6}], "has_more": False}),
    )
    assert [run.run_id async for run in client.list_all(ws, Tokens())] == [7, 6]
    assert [s.query.get("page_token") for s in server.requests("GET", LIST)] == [None, "p2"]


async def test_list_all_stops_on_a_repeated_page_token(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """A server that hands back the same token cannot trap the caller in a loop."""
    server.always("GET", LIST, Reply(json={"runs": [RUN], "next_page_token": "p2"}))
    with pytest.raises(DatabricksError, match="same page token"):
        _ = [run async for run in client.list_all(ws, Tokens())]
    assert len(server.requests("GET", LIST)) == 2


async def test_submit_without_token_never_reaches_the_wire(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """The client refuses to send (and so to retry) a runs/submit that lacks a token."""
    with pytest.raises(AssertionError, match="idempotency_token"):
        await client._call(ws, Tokens(), "POST", "runs/submit", body=SPEC)
    assert server.seen == []


async def test_concurrency_is_capped_per_host(client: JobsClient, server: ScriptedServer) -> None:
    """No more than max_concurrent_requests calls are in flight to one workspace."""
    server.always("GET", GET, Reply(json=RUN, delay=0.05))
    ws = Workspace(server.url, "2.2", max_concurrent_requests=2)
    await asyncio.gather(*(client.get(ws, Tokens(), 7) for _ in range(8)))
    assert server.peak == 2


# --- answers and failures -------------------------------------------------------------------


async def test_refused_token_is_invalidated_and_replaced_once(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """A 403 'Invalid access token.' drops that token; the retry carries a fresh one."""
    refused = Reply(403, json={"error_code": 403, "message": "Invalid access token."})
    server.script("GET", GET, refused, Reply(json=RUN))
    tokens = Tokens()
    await client.get(ws, tokens, 7)
    assert tokens.invalidated == ["tok-1"]
    auths = [s.headers["Authorization"] for s in server.requests("GET", GET)]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


async def test_second_refused_token_is_final(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """Two 401s in one call raise DatabricksAuthError after one refresh."""
    server.always("GET", GET, Reply(401))
    tokens = Tokens()
    with pytest.raises(DatabricksAuthError):
        await client.get(ws, tokens, 7)
    assert tokens.invalidated == ["tok-1", "tok-2"]
    assert len(server.requests("GET", GET)) == 2


async def test_rate_limit_is_retried_after_retry_after(
    client: JobsClient,
    server: ScriptedServer,
    ws: Workspace,
    sleeps: Sleeps,
    calls: list[tuple[str, str]],
) -> None:
    """A 429 waits its Retry-After and tries again; each attempt reaches on_call."""
    body = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}
    server.script(
        "POST",
        SUBMIT,
        Reply(429, json=body, headers={"Retry-After": "2"}),
        Reply(json={"run_id": 1}),
    )
    assert await client.submit(ws, Tokens(), SPEC, idempotency_token="k") == 1
    # A loaded machine may time the first try out (a short backoff) before the 429 comes.
    assert max(sleeps.calls) >= 2
    answered = [call for call in calls if call[1] != "timeout"]
    assert answered == [("runs/submit", "429"), ("runs/submit", "200")]


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (Reply(503, text="<html><pre>Service Unavailable</pre></html>"), "503"),
        (Reply(500, json={"error_code": "INTERNAL_ERROR", "message": "oops"}), "500"),
        (Reply(action="drop"), "transport_error"),
        (Reply(action="truncate"), "transport_error"),
        (Reply(action="hang", delay=2), "timeout"),
    ],
)
async def test_transient_failures_are_retried(
    client: JobsClient,
    server: ScriptedServer,
    ws: Workspace,
    calls: list[tuple[str, str]],
    failure: Reply,
    outcome: str,
) -> None:
    """5xx, dropped connections, cut bodies and hangs on runs/submit are tried again."""
    # A POST, because aiohttp itself resends an idempotent GET once on a dropped connection.
    server.script("POST", SUBMIT, failure, Reply(json={"run_id": 3}))
    assert await client.submit(ws, Tokens(), SPEC, idempotency_token="k") == 3
    assert calls == [("runs/submit", outcome), ("runs/submit", "200")]
    tokens = {s.json()["idempotency_token"] for s in server.requests("POST", SUBMIT)}
    assert tokens == {"k"}


async def test_failures_surface_as_unavailable_when_time_runs_out(
    session: aiohttp.ClientSession, server: ScriptedServer, ws: Workspace
) -> None:
    """Past the deadline the caller sees DatabricksUnavailable, caused by aiohttp's error."""
    client = JobsClient(
        session,
        retry=RetryPolicy(deadline=0.1, initial=0.01, maximum=0.01),
        timeout=aiohttp.ClientTimeout(total=1),
    )
    server.always("GET", GET, Reply(action="drop"))
    with pytest.raises(DatabricksUnavailable, match="ServerDisconnectedError") as raised:
        await client.get(ws, Tokens(), 7)
    assert isinstance(raised.value.__cause__, aiohttp.ServerDisconnectedError)
    assert len(server.requests("GET", GET)) > 1


@pytest.mark.parametrize(
    ("status", "payload", "cls", "text"),
    [
        (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "Missing required field: tasks"},
            DatabricksInvalidRequest,
            "Missing required field: tasks",
        ),
        (
            403,
            {"error_code": "PERMISSION_DENIED", "message": "sp-1 cannot use cluster c"},
            DatabricksPermissionDenied,
            "sp-1 cannot use cluster c",
        ),
    ],
)
async def test_permanent_refusals_fail_fast_with_the_message(
    client: JobsClient,
    server: ScriptedServer,
    ws: Workspace,
    status: int,
    payload: dict[str, str],
    cls: type[DatabricksError],
    text: str,
) -> None:
    """400 and 403 PERMISSION_DENIED are raised after one attempt with Databricks' words."""
    server.always("POST", SUBMIT, Reply(status, json=payload))
    with pytest.raises(cls, match=text):
        await client.submit(ws, Tokens(), SPEC, idempotency_token="k")
    assert len(server.requests("POST", SUBMIT)) == 1


async def test_unknown_run_is_run_not_found(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """runs/get's 400 'Run N does not exist.' becomes DatabricksRunNotFound."""
    body = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 9 does not exist."}
    server.script("GET", GET, Reply(400, json=body))
    with pytest.raises(DatabricksRunNotFound, match="Run 9 does not exist"):
        await client.get(ws, Tokens(), 9)


async def test_non_json_success_is_an_upstream_error(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """A 200 HTML page (a proxy's login form) is not mistaken for an answer."""
    server.script("GET", GET, Reply(text="<html>sign in</html>"))
    with pytest.raises(DatabricksError, match="not JSON"):
        await client.get(ws, Tokens(), 7)


async def test_redirects_are_not_followed(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """A redirect is an error, never a reason to send the bearer token somewhere else."""
    server.script("GET", GET, Reply(302, headers={"Location": "https://elsewhere.example/"}))
    with pytest.raises(DatabricksError, match="302"):
        await client.get(ws, Tokens(), 7)
    assert len(server.seen) == 1


async def test_tokens_never_reach_the_logs(
    client: JobsClient, server: ScriptedServer, ws: Workspace
) -> None:
    """Refusals, retries and calls are logged without the bearer token."""
    server.script("GET", GET, Reply(401), Reply(503), Reply(json=RUN))
    with capture_logs() as logs:
        await client.get(ws, Tokens(), 7)
    events = {e["event"] for e in logs}
    assert {"databricks_token_refused", "databricks_call_retrying"} <= events
    assert not any("tok-" in str(v) for e in logs for v in e.values())


# --- aiohttp's own exception types (narrow: the mock raises them exactly) --------------------


@pytest.mark.parametrize(
    ("exception", "outcome"),
    [
        (aiohttp.ServerDisconnectedError(), "transport_error"),
        (aiohttp.ClientConnectionError("reset by peer"), "transport_error"),
        (aiohttp.ClientPayloadError("truncated"), "transport_error"),
        (aiohttp.ServerTimeoutError("read timeout"), "timeout"),
        (TimeoutError(), "timeout"),
    ],
)
async def test_aiohttp_exceptions_become_unavailable(
    session: aiohttp.ClientSession, exception: Exception, outcome: str
) -> None:
    """Each transport exception aiohttp raises is translated to DatabricksUnavailable."""
    seen: list[str] = []
    client = JobsClient(
        session,
        retry=RetryPolicy(deadline=0.05, initial=0.01, maximum=0.01),
        timeout=aiohttp.ClientTimeout(total=1),
        on_call=lambda _endpoint, result, _seconds: seen.append(result),
    )
    with aioresponses() as mocked:
        mocked.get(
            "https://h.example/api/2.2/jobs/runs/get?run_id=7", exception=exception, repeat=True
        )
        with pytest.raises(DatabricksUnavailable) as raised:
            await client.get(Workspace("https://h.example"), Tokens(), 7)
    assert raised.value.__cause__ is exception
    assert seen[0] == outcome


class PoisonedToken:
    """A credential whose token holds a line break, as a poisoned Secret once gave."""

    async def token(self) -> str:
        return "dapi-poison\nX-Injected: yes"

    def invalidate(self, token: str) -> None:
        raise AssertionError("a request never sent cannot have been refused")


@pytest.mark.parametrize("call", ["get", "submit"])
async def test_a_header_aiohttp_will_not_build_becomes_a_databricks_error(
    client: JobsClient,
    ws: Workspace,
    server: ScriptedServer,
    calls: list[tuple[str, str]],
    call: str,
) -> None:
    """aiohttp's ValueError for a header with a newline leaves the edge as one of ours, once,
    with neither the token nor aiohttp's text in the message, and nothing reaches the server."""
    send = {
        "get": lambda: client.get(ws, PoisonedToken(), 7),
        "submit": lambda: client.submit(ws, PoisonedToken(), SPEC, idempotency_token="t-1"),
    }[call]
    with pytest.raises(DatabricksError) as caught:
        await send()
    assert not caught.value.transient
    assert isinstance(caught.value.__cause__, ValueError)
    assert "dapi-poison" not in str(caught.value)
    assert "ValueError" in str(caught.value)
    assert len(calls) == 1
    assert calls[0][1] == "invalid_request"
    assert server.seen == []
