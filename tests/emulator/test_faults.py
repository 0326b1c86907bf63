"""Fault injection over real HTTP: each action, counts and probabilities, before and after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.emulator._http import Api, notebook, open_api
from tests.fixtures.databricks_emulator import DatabricksEmulator

SUBMIT = "/api/*/jobs/runs/submit"


@pytest.fixture
async def api(databricks_emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with open_api(databricks_emulator) as api:
        yield api


async def add_fault(api: Api, **spec: object) -> str:
    reply = await api.admin("POST", "faults", spec)
    assert reply.status == 200, reply.body
    fault_id: str = reply.body["id"]
    return fault_id


async def submit_status(api: Api, **body: object) -> int:
    reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()], **body})
    return reply.status


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error_code": 401}),
        (403, {"error_code": 403, "message": "Invalid access token."}),
        (500, {"error_code": "INTERNAL_ERROR"}),
        (503, {"error_code": "TEMPORARILY_UNAVAILABLE"}),
    ],
)
async def test_an_injected_status_has_the_real_body(
    api: Api, status: int, body: dict[str, object]
) -> None:
    """Each injected status answers with the body shape Databricks uses for it."""
    await add_fault(api, path=SUBMIT, status=status)
    reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()]})
    assert reply.status == status
    assert body.items() <= reply.body.items()
    assert isinstance(reply.body["message"], str)


async def test_an_injected_429_carries_retry_after_and_request_info(api: Api) -> None:
    """429 REQUEST_LIMIT_EXCEEDED with an integer Retry-After and a RequestInfo detail."""
    await add_fault(api, path=SUBMIT, status=429, retry_after=7)
    reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()]})
    assert (reply.status, reply.headers["Retry-After"]) == (429, "7")
    assert reply.body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert reply.body["details"][0]["@type"] == "type.googleapis.com/google.rpc.RequestInfo"


async def test_error_code_and_message_can_be_overridden(api: Api) -> None:
    """error_code and message in the rule replace the standard ones."""
    await add_fault(api, status=400, error_code="COULD_NOT_ACQUIRE_LOCK", message="busy")
    reply = await api.call("GET", "runs/list")
    assert reply.body == {"error_code": "COULD_NOT_ACQUIRE_LOCK", "message": "busy"}


async def test_a_status_fault_acts_before_the_request_takes_effect(api: Api) -> None:
    """A faulted submit creates no run."""
    await add_fault(api, path=SUBMIT, status=503)
    assert await submit_status(api) == 503
    assert api.emulator.runs() == []


async def test_a_fault_fires_for_its_count_then_stops(api: Api) -> None:
    """count=N faults exactly the next N matching calls."""
    await add_fault(api, path=SUBMIT, status=503, count=2)
    assert [await submit_status(api) for _ in range(3)] == [503, 503, 200]


async def test_probability_one_applies_until_cleared(api: Api) -> None:
    """A probabilistic rule keeps firing until DELETE /emulator/faults."""
    await add_fault(api, path=SUBMIT, status=500, probability=1.0)
    assert [await submit_status(api) for _ in range(3)] == [500, 500, 500]
    cleared = await api.admin("DELETE", "faults")
    assert cleared.body == {"cleared": 1}
    assert await submit_status(api) == 200


async def test_a_probability_fires_on_some_calls_only(api: Api) -> None:
    """probability=0.5 faults some calls and lets others through."""
    await add_fault(api, path=SUBMIT, status=503, probability=0.5)
    statuses = {await submit_status(api) for _ in range(40)}
    assert statuses == {200, 503}


async def test_a_rule_matches_only_its_method(api: Api) -> None:
    """method narrows a rule; other methods on the path pass."""
    await add_fault(api, path="/api/2.2/jobs/runs/list", method="post", status=503)
    reply = await api.call("GET", "runs/list")
    assert reply.status == 200


async def test_a_glob_matches_both_api_versions(api: Api) -> None:
    """'/api/*/jobs/runs/submit' matches under 2.1 and 2.2."""
    await add_fault(api, path=SUBMIT, status=503, count=2)
    assert await submit_status(api) == 503
    api.version = "2.1"
    assert await submit_status(api) == 503


async def test_faults_come_before_authentication(api: Api) -> None:
    """A faulted call without a token gets the fault, not a 401."""
    await add_fault(api, status=503)
    reply = await api.call("GET", "runs/list", token=None)
    assert reply.status == 503


async def test_drop_closes_the_connection_and_creates_nothing(api: Api) -> None:
    """drop cuts the connection with no answer; the submit never happened."""
    await add_fault(api, path=SUBMIT, action="drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await submit_status(api)
    assert api.emulator.runs() == []
    stats = api.emulator.stats()
    assert stats["by_status"] == {"dropped": 1}


async def test_a_drop_after_loses_the_answer_of_a_run_that_exists(api: Api) -> None:
    """after=true creates the run, then drops; an idempotent retry gets the same run."""
    await add_fault(api, path=SUBMIT, action="drop", after=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await submit_status(api, idempotency_token="lost-response")
    [created] = api.emulator.runs()
    retried = await api.submit(idempotency_token="lost-response")
    assert retried == created["run_id"]
    assert len(api.emulator.runs()) == 1


async def test_a_status_after_fails_a_request_that_took_effect(api: Api) -> None:
    """after=true with a status answers the error though the run was created."""
    await add_fault(api, path=SUBMIT, status=500, after=True)
    assert await submit_status(api) == 500
    assert len(api.emulator.runs()) == 1


async def test_hang_delays_then_serves(api: Api) -> None:
    """hang with seconds adds latency, then the request is served."""
    await add_fault(api, path="/api/*/jobs/runs/list", action="hang", seconds=0.3)
    started = time.monotonic()
    reply = await api.call("GET", "runs/list")
    assert reply.status == 200
    assert time.monotonic() - started >= 0.3


async def test_a_long_hang_is_released_when_faults_are_cleared(api: Api) -> None:
    """Clearing faults frees requests that hang."""
    await add_fault(api, path="/api/*/jobs/runs/list", action="hang")
    call = asyncio.create_task(api.call("GET", "runs/list"))
    await asyncio.sleep(0.2)
    assert not call.done()
    await api.admin("DELETE", "faults")
    reply = await asyncio.wait_for(call, timeout=5)
    assert reply.status == 200


async def test_a_client_timeout_meets_a_hang(api: Api) -> None:
    """A hang longer than the client's timeout looks like a dead server to it."""
    await add_fault(api, path="/api/*/jobs/runs/list", action="hang", seconds=30)
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with api.http.get(
            f"{api.emulator.url}/api/2.2/jobs/runs/list",
            headers=api.emulator.headers(),
            timeout=timeout,
        ):
            pass


async def test_the_token_endpoint_can_be_faulted_with_oauth_bodies(api: Api) -> None:
    """/oidc/v1/token faults use the OAuth error shape for 400 and 401."""
    await add_fault(api, path="/oidc/v1/token", status=401, count=1)
    reply = await api.call(
        "POST", "/oidc/v1/token", token=None, data="grant_type=client_credentials"
    )
    assert (reply.status, reply.body["error"]) == (401, "invalid_client")


async def test_the_emulator_api_is_never_faulted(api: Api) -> None:
    """A '*' rule leaves /emulator/ alone, so a test can always clear it."""
    await add_fault(api, status=503, probability=1.0)
    listed = await api.admin("GET", "faults")
    assert listed.status == 200
    assert listed.body["faults"][0]["status"] == 503


async def test_one_rule_can_be_removed_by_id(api: Api) -> None:
    """DELETE /emulator/faults/<id> removes that rule only."""
    first = await add_fault(api, path=SUBMIT, status=503, probability=1.0)
    await add_fault(api, path="/api/*/jobs/runs/list", status=503, probability=1.0)
    assert (await api.admin("DELETE", f"faults/{first}")).status == 200
    assert (await api.admin("DELETE", f"faults/{first}")).status == 404
    assert await submit_status(api) == 200
    assert (await api.call("GET", "runs/list")).status == 503


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "explode"},
        {"status": 200},
        {"count": 1, "probability": 0.5},
        {"action": "hang", "after": True},
        {"probability": 2},
        {"unknown": 1},
    ],
)
async def test_an_invalid_rule_is_refused(api: Api, spec: dict[str, object]) -> None:
    """Incoherent or unknown rule fields are a 400 from the emulator API."""
    reply = await api.admin("POST", "faults", spec)
    assert reply.status == 400


async def test_stats_count_requests_by_route_and_status(api: Api) -> None:
    """GET /emulator/stats counts answers per method, route template and status."""
    await add_fault(api, path=SUBMIT, status=503)
    await submit_status(api)
    await submit_status(api)
    stats = (await api.admin("GET", "stats")).body
    route = "/api/{version}/jobs/runs/submit"
    assert {"method": "POST", "path": route, "status": "503", "count": 1} in stats["requests"]
    assert {"method": "POST", "path": route, "status": "200", "count": 1} in stats["requests"]
    assert (stats["total"], stats["faults"]["injected"], stats["runs"]["total"]) == (2, 1, 1)


async def test_the_clock_can_be_advanced_over_http(api: Api) -> None:
    """POST /emulator/clock/advance moves every run along."""
    run_id = await api.submit()
    reply = await api.admin("POST", "clock/advance", {"seconds": 100})
    assert reply.body["offset_seconds"] == 100
    assert (await api.get(run_id))["state"]["life_cycle_state"] == "TERMINATED"


async def test_emulator_runs_lists_every_run_with_its_principal(api: Api) -> None:
    """GET /emulator/runs shows each run's principal, token and state, across principals."""
    await api.submit(idempotency_token="a")
    await api.submit(token=api.emulator.other_pat)
    runs = (await api.admin("GET", "runs")).body["runs"]
    assert [(r["principal"], r["idempotency_token"]) for r in runs] == [
        (api.emulator.user, "a"),
        (api.emulator.other_user, None),
    ]
    assert runs[0]["life_cycle_state"] == "PENDING"


async def test_reset_forgets_runs_and_faults(api: Api) -> None:
    """POST /emulator/reset empties runs, faults and counts."""
    await api.submit()
    await add_fault(api, status=503, probability=1.0)
    await api.admin("POST", "reset")
    assert api.emulator.runs() == []
    assert (await api.call("GET", "runs/list")).status == 200
