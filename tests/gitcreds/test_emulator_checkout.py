"""The emulator fails a run with an Azure DevOps git_source as Databricks does when the
principal's Git credential cannot clone at the run's start: missing, not an Entra token for
Azure DevOps, or expired on the emulator's clock; and Entra issues Azure DevOps tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fixtures.databricks_emulator import DatabricksEmulator, EmulatorFactory, emulator_config
from tests.gitcreds.stack import ado_spec

TENANT = "72f988bf-0000-4000-8000-0000000c4ec0"
APP_ID = "c4ec0000-0000-4000-8000-000000000001"
APP = "checkout-app"
SECRET = "checkout-app-secret-value-000000001"
DENIED_ID = "c4ec0000-0000-4000-8000-000000000002"
DEVOPS = "499b84ac-1321-427f-aa17-267ca6975798"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
FAST = {"pending_seconds": 1, "running_seconds": 1, "terminating_seconds": 1}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def emulator(databricks_emulator_factory: EmulatorFactory) -> DatabricksEmulator:
    apps = [
        {"client_id": APP_ID, "name": APP, "secrets": [SECRET]},
        {
            "client_id": DENIED_ID,
            "name": "denied-app",
            "secrets": [SECRET],
            "unassigned_resources": [DEVOPS],
        },
    ]
    config = emulator_config(
        lifecycle=FAST,
        limits={"max_active_runs": 1},
        entra={"tenants": [{"tenant_id": TENANT, "apps": apps}]},
    )
    return await databricks_emulator_factory(config)


async def entra_token(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator, resource: str, client: str = APP_ID
) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client,
        "client_secret": SECRET,
        "scope": f"{resource}/.default",
    }
    async with http.post(f"{emulator.url}/{TENANT}/oauth2/v2.0/token", data=form) as resp:
        return resp.status, await resp.json()


class Workspace:
    """The emulator as the Entra app sees it."""

    def __init__(self, http: aiohttp.ClientSession, emulator: DatabricksEmulator, token: str):
        self.http, self.emulator, self.token = http, emulator, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = self.emulator.headers(self.token)
        url = f"{self.emulator.url}{path}"
        async with self.http.request(method, url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def store(self, token: str) -> None:
        body = {"git_provider": "azureDevOpsServices", "personal_access_token": token}
        _, listed = await self.call("GET", "/api/2.0/git-credentials")
        found = listed.get("credentials", [])
        if found:
            path = f"/api/2.0/git-credentials/{found[0]['credential_id']}"
            assert (await self.call("PATCH", path, body))[0] == 200
        else:
            assert (await self.call("POST", "/api/2.0/git-credentials", body))[0] == 200

    async def submit(self, spec: dict[str, Any]) -> int:
        status, body = await self.call("POST", "/api/2.2/jobs/runs/submit", spec)
        assert status == 200, body
        return int(body["run_id"])

    async def ending(self, run_id: int) -> dict[str, Any]:
        self.emulator.advance(10)
        status, body = await self.call("GET", f"/api/2.2/jobs/runs/get?run_id={run_id}")
        assert status == 200, body
        return dict(body)


@pytest.fixture
async def workspace(http: aiohttp.ClientSession, emulator: DatabricksEmulator) -> Workspace:
    status, body = await entra_token(http, emulator, DATABRICKS)
    assert status == 200, body
    return Workspace(http, emulator, body["access_token"])


def checkout_failed(run: dict[str, Any]) -> bool:
    state, status = run["state"], run["status"]
    return (
        state["life_cycle_state"] == "INTERNAL_ERROR"
        and state["result_state"] == "FAILED"
        and status["termination_details"]["code"] == "REPOSITORY_CHECKOUT_FAILED"
    )


async def test_entra_issues_azure_devops_tokens(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator
) -> None:
    """A token for the Azure DevOps resource is issued, counted by resource, and refused as
    a workspace bearer token (wrong audience)."""
    status, body = await entra_token(http, emulator, DEVOPS)
    assert status == 200, body
    assert emulator.stats()["identity"]["entra"]["tokens_issued"]["by_resource"] == {
        "azure-devops": 1
    }
    async with http.get(
        f"{emulator.url}/api/2.2/jobs/runs/list", headers=emulator.headers(body["access_token"])
    ) as resp:
        assert resp.status == 403


async def test_an_app_not_assigned_to_azure_devops_gets_no_token(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator
) -> None:
    """An app the resource requires an assignment for is refused with AADSTS501051."""
    status, body = await entra_token(http, emulator, DEVOPS, client=DENIED_ID)
    assert status == 400
    assert body["error"] == "invalid_grant"
    assert body["error_codes"] == [501051]


async def test_a_run_clones_with_an_entra_token_for_azure_devops(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator, workspace: Workspace
) -> None:
    """With the principal's credential holding a live Azure DevOps token the run succeeds,
    whether its git_source is the run's or a task's."""
    _, devops = await entra_token(http, emulator, DEVOPS)
    await workspace.store(devops["access_token"])
    for spec in (ado_spec("top"), ado_spec("task", per_task=True)):
        run = await workspace.ending(await workspace.submit(spec))
        assert run["state"]["result_state"] == "SUCCESS", run


@pytest.mark.parametrize("held", ["nothing", "a-pat", "databricks-token", "expired"])
async def test_a_run_without_a_usable_credential_fails_its_checkout(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator, workspace: Workspace, held: str
) -> None:
    """No credential, a token that is not from Entra, an Entra token for another resource,
    or one expired by the run's start: INTERNAL_ERROR / REPOSITORY_CHECKOUT_FAILED."""
    if held == "a-pat":
        await workspace.store("ado-personal-access-token-0000")
    elif held == "databricks-token":
        await workspace.store(workspace.token)
    elif held == "expired":
        _, devops = await entra_token(http, emulator, DEVOPS)
        await workspace.store(devops["access_token"])
        emulator.advance(3600)
        _, body = await entra_token(http, emulator, DATABRICKS)
        workspace.token = body["access_token"]
    run = await workspace.ending(await workspace.submit(ado_spec(f"fails-{held}")))
    assert checkout_failed(run), run


async def test_a_run_without_azure_devops_needs_no_credential(
    workspace: Workspace,
) -> None:
    """Another provider (or no git_source) is not the emulator's concern: the run succeeds."""
    spec = ado_spec("github", provider="gitHub")
    run = await workspace.ending(await workspace.submit(spec))
    assert run["state"]["result_state"] == "SUCCESS", run


async def test_a_queued_run_is_judged_by_the_credential_at_its_start(
    http: aiohttp.ClientSession, emulator: DatabricksEmulator, workspace: Workspace
) -> None:
    """A run queued behind another starts when that one ends: a token that expired in
    between fails it even though it was valid at submission."""
    _, devops = await entra_token(http, emulator, DEVOPS)
    await workspace.store(devops["access_token"])
    spec = ado_spec("long", seconds=4000)
    await workspace.submit(spec)
    queued = await workspace.submit(ado_spec("queued", queue=True))
    emulator.advance(4100)
    # The workspace token has expired too; the app fetches another to look.
    _, body = await entra_token(http, emulator, DATABRICKS)
    workspace.token = body["access_token"]
    assert checkout_failed(await workspace.ending(queued))
