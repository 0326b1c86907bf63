"""JobsClient against the Databricks workspace emulator over real sockets, with faults injected.

What must hold whatever the emulator does to a request (401 storms, 429 with Retry-After, 5xx,
hangs, connections dropped before or after the request took effect): every submit creates
exactly one run (counted through /emulator/runs), every get returns what the emulator knows,
and permanent refusals fail at once with Databricks' message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from gateway.databricks.jobs import JobsClient, Workspace
from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.errors import (
    DatabricksAuthError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRunNotFound,
)
from gateway.identity.builders import Builder
from gateway.identity.cache import CachedCredential, TokenCache
from gateway.identity.strategy import Plan, WorkspaceRef
from gateway.settings import IdentityOptions
from tests.fixtures.databricks_emulator import DatabricksEmulator

SUBMIT_PATH = "/api/*/jobs/runs/submit"
GET_PATH = "/api/*/jobs/runs/get"
# Hangs are cut by the client's request timeout; keep it short so the suite stays fast.
REQUEST_TIMEOUT = 0.5


def spec(name: str, result: str | None = None) -> dict[str, Any]:
    params = {"lakegate_emulator_result": result} if result else {}
    task = {
        "task_key": "main",
        "notebook_task": {"notebook_path": "/etl", "base_parameters": params},
    }
    return {"run_name": name, "tasks": [task]}


@pytest.fixture
def client(session: aiohttp.ClientSession) -> JobsClient:
    return JobsClient(
        session,
        retry=RetryPolicy(deadline=8, initial=0.01, maximum=0.05),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )


@pytest.fixture
def ws(databricks_emulator: DatabricksEmulator) -> Workspace:
    return Workspace(databricks_emulator.url, "2.2", max_concurrent_requests=16)


@pytest.fixture
async def builder(session: aiohttp.ClientSession) -> AsyncIterator[Builder]:
    """Credentials as the resolver builds them, in a token cache closed after the test."""
    cache = TokenCache()
    tokens = TokenClient(session, retry=RetryPolicy(deadline=5, initial=0.01, maximum=0.05))
    yield Builder(session, cache, IdentityOptions(), None, tokens=tokens)
    await tokens.aclose()
    await cache.aclose()


def plan(emulator: DatabricksEmulator, kind: str, **fields: Any) -> Plan:
    return Plan(kind, WorkspaceRef("emulated", emulator.url), "tenant policy", **fields)


def nothing() -> None:
    """An on_invalidate hook that does nothing."""


@pytest.fixture
def pat(builder: Builder, databricks_emulator: DatabricksEmulator) -> CachedCredential:
    secret = SecretStr(databricks_emulator.pat)
    return builder.credential(
        plan(databricks_emulator, "pat", inline_secret=secret), "team-a", nothing
    )


@pytest.fixture
def m2m(builder: Builder, databricks_emulator: DatabricksEmulator) -> CachedCredential:
    oauth = plan(
        databricks_emulator,
        "oauth-m2m",
        client_id=databricks_emulator.client_id,
        inline_secret=SecretStr(databricks_emulator.client_secret),
    )
    return builder.credential(oauth, "team-a", nothing)


async def add_fault(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator, **fault: Any
) -> None:
    async with session.post(f"{emulator.url}/emulator/faults", json=fault) as resp:
        assert resp.status == 200, await resp.text()


async def emulator_runs(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator
) -> list[dict[str, Any]]:
    async with session.get(f"{emulator.url}/emulator/runs") as resp:
        runs: list[dict[str, Any]] = (await resp.json())["runs"]
        return runs


def requests_to(emulator: DatabricksEmulator, method: str, path: str) -> int:
    return sum(
        r["count"]
        for r in emulator.stats()["requests"]
        if r["method"] == method and r["path"] == path
    )


async def assert_truth(
    client: JobsClient,
    ws: Workspace,
    cred: CachedCredential,
    session: aiohttp.ClientSession,
    emulator: DatabricksEmulator,
) -> None:
    """Every run the emulator holds reads back, through the client, as the emulator has it."""
    truth = await emulator_runs(session, emulator)
    snapshots = await asyncio.gather(*(client.get(ws, cred, r["run_id"]) for r in truth))
    for run, snap in zip(truth, snapshots, strict=True):
        assert snap.run_id == run["run_id"]
        assert snap.run_name == run["run_name"]
        assert snap.status.life_cycle_state == run["life_cycle_state"]
        assert snap.status.result_state == run.get("result_state")


# --- the plain path -------------------------------------------------------------------------


async def test_a_run_is_followed_to_its_end(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """submit, get and list_all follow a failing run from PENDING to TERMINATED/FAILED."""
    run_id = await client.submit(ws, pat, spec("etl", "FAILED"), idempotency_token="lg-1")
    assert (await client.get(ws, pat, run_id)).status.life_cycle_state == "PENDING"
    active = [r.run_id async for r in client.list_all(ws, pat, active_only=True, page_size=1)]
    assert active == [run_id]
    databricks_emulator.advance(11)
    assert (await client.get(ws, pat, run_id)).status.life_cycle_state == "RUNNING"
    databricks_emulator.advance(70)
    snap = await client.get(ws, pat, run_id)
    assert (snap.status.life_cycle_state, snap.status.result_state) == ("TERMINATED", "FAILED")
    assert snap.status.termination_code == "RUN_EXECUTION_ERROR"
    assert snap.end_time is not None
    assert [r.run_id async for r in client.list_all(ws, pat, active_only=True)] == []


async def test_resubmitting_a_token_returns_the_same_run(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """The idempotency token makes a second submit of the same ledger row a no-op."""
    first = await client.submit(ws, pat, spec("etl"), idempotency_token="lg-same")
    again = await client.submit(ws, pat, spec("etl"), idempotency_token="lg-same")
    assert first == again
    assert len(await emulator_runs(session, databricks_emulator)) == 1


# --- faults on submit: exactly one run each -------------------------------------------------

SUBMIT_FAULTS = [
    pytest.param({"action": "status", "status": 401, "count": 1}, id="401"),
    pytest.param({"action": "status", "status": 403, "count": 1}, id="403-invalid-token"),
    pytest.param({"action": "status", "status": 429, "retry_after": 0, "count": 3}, id="429"),
    pytest.param({"action": "status", "status": 500, "count": 2}, id="500"),
    pytest.param({"action": "status", "status": 502, "count": 1}, id="502"),
    pytest.param({"action": "status", "status": 503, "count": 2}, id="503"),
    pytest.param({"action": "hang", "seconds": 5, "count": 1}, id="hang"),
    pytest.param({"action": "drop", "count": 2}, id="drop-before"),
    pytest.param({"action": "drop", "after": True, "count": 2}, id="drop-after"),
    pytest.param({"action": "status", "status": 500, "after": True, "count": 1}, id="500-after"),
    pytest.param({"action": "status", "status": 503, "after": True, "count": 2}, id="503-after"),
]


@pytest.mark.parametrize("fault", SUBMIT_FAULTS)
async def test_a_faulted_submit_creates_exactly_one_run(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
    fault: dict[str, Any],
) -> None:
    """Whatever happens to the request or its answer, one submit is one run."""
    await add_fault(session, databricks_emulator, path=SUBMIT_PATH, **fault)
    run_id = await client.submit(ws, pat, spec("etl"), idempotency_token="lg-fault-1")
    (run,) = await emulator_runs(session, databricks_emulator)
    assert (run["run_id"], run["idempotency_token"]) == (run_id, "lg-fault-1")
    assert requests_to(databricks_emulator, "POST", "/api/{version}/jobs/runs/submit") > 1
    await assert_truth(client, ws, pat, session, databricks_emulator)


async def test_a_storm_of_faults_over_many_submits(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """Thirty concurrent submits through random 5xx, 429s and drops: thirty runs, one each."""
    for fault in (
        {"action": "drop", "after": True, "probability": 0.15},
        {"action": "drop", "probability": 0.1},
        {"action": "status", "status": 503, "after": True, "probability": 0.15},
        {"action": "status", "status": 500, "probability": 0.1},
        {"action": "status", "status": 429, "retry_after": 0, "probability": 0.1},
    ):
        await add_fault(session, databricks_emulator, path=SUBMIT_PATH, **fault)
    tokens = [f"lg-storm-{i}" for i in range(30)]
    run_ids = await asyncio.gather(
        *(client.submit(ws, pat, spec(t), idempotency_token=t) for t in tokens)
    )
    runs = await emulator_runs(session, databricks_emulator)
    assert sorted(r["idempotency_token"] for r in runs) == sorted(tokens)
    assert {r["idempotency_token"]: r["run_id"] for r in runs} == dict(
        zip(tokens, run_ids, strict=True)
    )
    assert databricks_emulator.stats()["faults"]["injected"] > 0
    await add_fault(session, databricks_emulator, path=GET_PATH, action="drop", probability=0.2)
    await assert_truth(client, ws, pat, session, databricks_emulator)


async def test_a_401_storm_costs_each_call_one_retry(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """Ten submits each refused once with 401 each succeed on their one retry."""
    for i in range(10):
        await add_fault(session, databricks_emulator, path=SUBMIT_PATH, status=401, count=1)
        await client.submit(ws, pat, spec(f"r{i}"), idempotency_token=f"lg-401-{i}")
    assert len(await emulator_runs(session, databricks_emulator)) == 10
    assert requests_to(databricks_emulator, "POST", "/api/{version}/jobs/runs/submit") == 20


async def test_retry_after_is_honoured(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A 429 with Retry-After: 1 is not tried again for at least a second."""
    await add_fault(
        session, databricks_emulator, path=SUBMIT_PATH, status=429, retry_after=1, count=1
    )
    started = time.monotonic()
    await client.submit(ws, pat, spec("etl"), idempotency_token="lg-429")
    assert time.monotonic() - started >= 1.0
    assert len(await emulator_runs(session, databricks_emulator)) == 1


# --- faults on get: the truth, always -------------------------------------------------------


async def test_gets_through_faults_return_the_truth(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """Through 5xx, 429s, drops and a hang, every get matches the emulator at every stage."""
    for i, result in enumerate(["SUCCESS", "FAILED", "TIMEDOUT", "INTERNAL_ERROR"]):
        await client.submit(ws, pat, spec(f"r{i}", result), idempotency_token=f"lg-get-{i}")
    for fault in (
        {"action": "status", "status": 503, "probability": 0.2},
        {"action": "status", "status": 500, "probability": 0.1},
        {"action": "status", "status": 429, "retry_after": 0, "probability": 0.1},
        {"action": "drop", "probability": 0.2},
        {"action": "hang", "seconds": 5, "count": 1},
    ):
        await add_fault(session, databricks_emulator, path=GET_PATH, **fault)
    for advance in (0, 11, 61, 10):
        databricks_emulator.advance(advance)
        await assert_truth(client, ws, pat, session, databricks_emulator)


# --- permanent refusals fail fast -----------------------------------------------------------


async def test_a_bad_spec_fails_fast_with_the_databricks_message(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """400 INVALID_PARAMETER_VALUE is raised after one request, in Databricks' words."""
    with pytest.raises(DatabricksInvalidRequest, match="At least one task is required") as raised:
        await client.submit(ws, pat, {"run_name": "empty", "tasks": []}, idempotency_token="lg-bad")
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert requests_to(databricks_emulator, "POST", "/api/{version}/jobs/runs/submit") == 1
    assert await emulator_runs(session, databricks_emulator) == []


async def test_permission_denied_fails_fast_with_the_databricks_message(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """403 PERMISSION_DENIED is raised after one request, with its message."""
    message = "alice@example.com does not have Can Attach To on cluster 0101-abc"
    await add_fault(
        session,
        databricks_emulator,
        path=SUBMIT_PATH,
        status=403,
        error_code="PERMISSION_DENIED",
        message=message,
        count=5,
    )
    with pytest.raises(DatabricksPermissionDenied, match=message):
        await client.submit(ws, pat, spec("etl"), idempotency_token="lg-403")
    assert requests_to(databricks_emulator, "POST", "/api/{version}/jobs/runs/submit") == 1


async def test_an_unknown_run_is_not_found(
    client: JobsClient, ws: Workspace, pat: CachedCredential
) -> None:
    """runs/get of an id the workspace never had raises DatabricksRunNotFound."""
    with pytest.raises(DatabricksRunNotFound, match="does not exist"):
        await client.get(ws, pat, 987654321)


async def test_a_revoked_pat_fails_after_one_retry(
    client: JobsClient,
    ws: Workspace,
    pat: CachedCredential,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A PAT cannot be refreshed: a revoked one fails with DatabricksAuthError, twice tried."""
    databricks_emulator.server.identity.revoke_token(databricks_emulator.pat)
    with pytest.raises(DatabricksAuthError, match="Invalid access token"):
        await client.submit(ws, pat, spec("etl"), idempotency_token="lg-revoked")
    assert requests_to(databricks_emulator, "POST", "/api/{version}/jobs/runs/submit") == 2


# --- OAuth M2M ------------------------------------------------------------------------------


async def test_oauth_m2m_runs_as_the_service_principal(
    client: JobsClient,
    ws: Workspace,
    m2m: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """The credential gets its token from the emulator's token endpoint; runs are the SP's."""
    run_id = await client.submit(ws, m2m, spec("etl"), idempotency_token="lg-m2m")
    (run,) = await emulator_runs(session, databricks_emulator)
    assert (run["run_id"], run["principal"]) == (run_id, databricks_emulator.sp_name)
    assert databricks_emulator.stats()["identity"]["tokens_issued"]["total"] == 1


async def test_a_revoked_oauth_token_is_refreshed_once(
    client: JobsClient,
    ws: Workspace,
    m2m: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """After revocation, twenty concurrent calls share one new token and all succeed."""
    run_id = await client.submit(ws, m2m, spec("etl"), idempotency_token="lg-m2m-revoke")
    old = await m2m.token()
    assert databricks_emulator.server.identity.revoke_token(old)
    snaps = await asyncio.gather(*(client.get(ws, m2m, run_id) for _ in range(20)))
    assert {s.run_id for s in snaps} == {run_id}
    assert await m2m.token() != old
    assert databricks_emulator.stats()["identity"]["tokens_issued"]["total"] == 2


async def test_token_endpoint_faults_are_retried(
    client: JobsClient,
    ws: Workspace,
    m2m: CachedCredential,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
) -> None:
    """A 503 and a dropped connection at /oidc/v1/token delay the first call, not fail it."""
    await add_fault(session, databricks_emulator, path="/oidc/v1/token", status=503, count=1)
    await add_fault(session, databricks_emulator, path="/oidc/v1/token", action="drop", count=1)
    await client.submit(ws, m2m, spec("etl"), idempotency_token="lg-m2m-idp")
    assert requests_to(databricks_emulator, "POST", "/oidc/v1/token") == 3
