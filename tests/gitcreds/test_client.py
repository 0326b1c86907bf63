"""The Git Credentials API client against a scripted server: what it sends (the token only
in the body, the management headers of an Entra principal), how answers are read, and how
failures map (a 401 refetches once; a 409 is 'already exists'; a 5xx retries)."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.databricks.auth import AccessToken
from gateway.databricks.git_credentials import GitCredential, GitCredentialsClient, already_exists
from gateway.databricks.jobs import (
    AZURE_MANAGEMENT_TOKEN_HEADER,
    AZURE_RESOURCE_ID_HEADER,
    Workspace,
)
from gateway.databricks.retries import RetryPolicy
from gateway.errors import DatabricksError, DatabricksPermissionDenied
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.secrets_registry import scrub
from tests.databricks.scripted import Reply, ScriptedServer

PATH = "/api/2.0/git-credentials"
RESOURCE_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/w"


class Counted:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.calls = prefix, 0

    async def __call__(self) -> AccessToken:
        self.calls += 1
        return AccessToken(f"{self.prefix}-{self.calls}", expires_at=None)


def credential(management: Counted | None = None) -> tuple[CachedCredential, Counted]:
    fetch = Counted("dbx")
    key = CacheKey("team-a", "azure-client-secret:app", "https://ws")
    cred = CachedCredential(
        TokenCache(),
        key,
        fetch,
        kind="azure-client-secret",
        namespace="team-a",
        management=management,
    )
    return cred, fetch


def client(session: aiohttp.ClientSession) -> GitCredentialsClient:
    return GitCredentialsClient(
        session,
        retry=RetryPolicy(deadline=2, initial=0.01, maximum=0.02),
        timeout=aiohttp.ClientTimeout(total=2),
    )


async def test_update_sends_the_token_in_the_body_and_registers_it(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """PATCH carries provider, username and token as JSON, the principal's bearer token as
    Authorization; the Git token is remembered for masking."""
    server.script("PATCH", f"{PATH}/42", Reply(json={}))
    cred, _ = credential()
    token = "entra-devops-token-value-0001"
    await client(session).update(
        Workspace(server.url),
        cred,
        42,
        git_provider="azureDevOpsServices",
        git_username="app",
        token=token,
    )
    (seen,) = server.requests("PATCH", f"{PATH}/42")
    assert seen.json() == {
        "git_provider": "azureDevOpsServices",
        "git_username": "app",
        "personal_access_token": token,
    }
    assert seen.headers["Authorization"] == "Bearer dbx-1"
    assert scrub(f"echo {token}") == "echo [redacted]"


async def test_an_entra_principal_sends_its_management_headers(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """With the workspace's azure_resource_id, the calls carry the management token and the
    resource id, as Jobs calls do."""
    server.always("GET", PATH, Reply(json={}))
    cred, _ = credential(Counted("mgmt"))
    assert (
        await client(session).list(Workspace(server.url, azure_resource_id=RESOURCE_ID), cred) == []
    )
    (seen,) = server.requests("GET", PATH)
    assert seen.headers[AZURE_MANAGEMENT_TOKEN_HEADER] == "mgmt-1"
    assert seen.headers[AZURE_RESOURCE_ID_HEADER] == RESOURCE_ID


async def test_a_refused_token_is_fetched_again_once(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """A 401 drops the principal's token; the retry goes with a new one."""
    item = {"credential_id": 5, "git_provider": "azureDevOpsServices", "git_username": "app"}
    server.script("GET", PATH, Reply(status=401, json={"error_code": 401, "message": "expired"}))
    server.script("GET", PATH, Reply(json={"credentials": [item]}))
    cred, fetch = credential()
    listed = await client(session).list(Workspace(server.url), cred)
    assert listed == [GitCredential(5, "azureDevOpsServices", "app")]
    assert fetch.calls == 2
    assert [s.headers["Authorization"] for s in server.requests("GET", PATH)] == [
        "Bearer dbx-1",
        "Bearer dbx-2",
    ]


async def test_a_conflict_on_create_reads_as_already_exists(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    server.script(
        "POST",
        PATH,
        Reply(status=409, json={"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}),
    )
    cred, _ = credential()
    with pytest.raises(DatabricksError) as info:
        await client(session).create(
            Workspace(server.url),
            cred,
            git_provider="azureDevOpsServices",
            git_username="a",
            token="t" * 20,
        )
    assert already_exists(info.value)


async def test_a_5xx_is_retried_and_a_403_is_not(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Outages are tried again within the deadline; PERMISSION_DENIED is final."""
    server.script(
        "DELETE", f"{PATH}/9", Reply(status=503, json={"error_code": "TEMPORARILY_UNAVAILABLE"})
    )
    server.script("DELETE", f"{PATH}/9", Reply(json={}))
    cred, _ = credential()
    await client(session).delete(Workspace(server.url), cred, 9)
    assert len(server.requests("DELETE", f"{PATH}/9")) == 2
    server.script(
        "DELETE",
        f"{PATH}/8",
        Reply(status=403, json={"error_code": "PERMISSION_DENIED", "message": "no"}),
    )
    with pytest.raises(DatabricksPermissionDenied):
        await client(session).delete(Workspace(server.url), cred, 8)
    assert len(server.requests("DELETE", f"{PATH}/8")) == 1


async def test_a_dropped_connection_is_an_outage(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    server.always("GET", PATH, Reply(action="drop"))
    cred, _ = credential()
    with pytest.raises(DatabricksError) as info:
        await client(session).list(Workspace(server.url), cred)
    assert info.value.transient
