"""The Jobs client's side of the Azure headers: both tokens fetched afresh after a refusal, and
the resource id read from the settings. Which calls carry which header is shown end to end,
recorded by the emulator, in tests/identity/test_azure_headers.py."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.databricks.auth import AccessToken
from gateway.databricks.jobs import (
    AZURE_MANAGEMENT_TOKEN_HEADER,
    JobsClient,
    Workspace,
)
from gateway.databricks.retries import RetryPolicy
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.settings import WorkspaceSettings
from tests.databricks.scripted import Reply, ScriptedServer

GET = "/api/2.2/jobs/runs/get"
RUN = {"run_id": 7, "state": {"life_cycle_state": "RUNNING"}, "status": {"state": "RUNNING"}}
RESOURCE_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/"
    "providers/Microsoft.Databricks/workspaces/ws"
)


class Counted:
    """A fetch handing out ``<prefix>-1``, ``<prefix>-2``... for an hour each."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls = 0

    async def __call__(self) -> AccessToken:
        self.calls += 1
        return AccessToken(f"{self.prefix}-{self.calls}", expires_at=None)


def client(session: aiohttp.ClientSession) -> JobsClient:
    return JobsClient(
        session,
        retry=RetryPolicy(deadline=5, initial=0.01, maximum=0.02),
        timeout=aiohttp.ClientTimeout(total=2),
    )


@pytest.fixture
async def cache() -> TokenCache:
    return TokenCache()


def entra_credential(
    cache: TokenCache, databricks: Counted, management: Counted | None
) -> CachedCredential:
    key = CacheKey("team-az", "azure-client-secret:app", "https://adb-1.2.azuredatabricks.net")
    return CachedCredential(
        cache,
        key,
        databricks,
        kind="azure-client-secret",
        namespace="team-az",
        management=management,
    )


async def test_a_refused_call_refetches_both_tokens(
    session: aiohttp.ClientSession, server: ScriptedServer, cache: TokenCache
) -> None:
    """Either token may be the one refused: after a 403 both are fetched afresh."""
    refused = Reply(403, json={"error_code": 403, "message": "Invalid access token."})
    server.script("GET", GET, refused, Reply(json=RUN))
    databricks, management = Counted("dbx"), Counted("mgmt")
    cred = entra_credential(cache, databricks, management)
    ws = Workspace(server.url, "2.2", 4, azure_resource_id=RESOURCE_ID)
    await client(session).get(ws, cred, 7)
    last = server.requests("GET", GET)[-1]
    assert (last.headers["Authorization"], last.headers[AZURE_MANAGEMENT_TOKEN_HEADER]) == (
        "Bearer dbx-2",
        "mgmt-2",
    )
    await cache.aclose()


def test_the_resource_id_travels_from_the_settings() -> None:
    settings = WorkspaceSettings(host="adb-1.2.azuredatabricks.net", azure_resource_id=RESOURCE_ID)
    assert Workspace.from_settings(settings).azure_resource_id == RESOURCE_ID


@pytest.mark.parametrize(
    "bad",
    [
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s",
        "subscriptions/x/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws",
        RESOURCE_ID + "/extra",
        RESOURCE_ID.replace("rg", "r g"),
    ],
)
def test_a_resource_id_that_is_no_databricks_workspace_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an Azure Databricks resource id"):
        WorkspaceSettings(host="adb-1.2.azuredatabricks.net", azure_resource_id=bad)
