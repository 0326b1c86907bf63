"""What the emulator records for tests to count: the scope each token grant asked for, and
per API call whether the Azure management token came with it and which workspace resource id
it named (never the token's value)."""

from __future__ import annotations

import aiohttp

from tests.emulator._http import open_api
from tests.fixtures.databricks_emulator import CLIENT_ID, CLIENT_SECRET, DatabricksEmulator

TOKEN_URL = "/oidc/v1/token"
MANAGEMENT = "X-Databricks-Azure-SP-Management-Token"
RESOURCE = "X-Databricks-Azure-Workspace-Resource-Id"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/"
    "providers/Microsoft.Databricks/workspaces/ws"
)


async def grant(emulator: DatabricksEmulator, form: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": aiohttp.encode_basic_auth(CLIENT_ID, CLIENT_SECRET)}
        async with http.post(emulator.url + TOKEN_URL, data=form, headers=headers) as resp:
            return resp.status


async def test_each_grant_is_counted_by_the_scope_it_sent(
    databricks_emulator: DatabricksEmulator,
) -> None:
    """As sent, whitespace normalised; a grant without a scope is counted under ""."""
    for scope in ("all-apis", "sql  offline_access", None):
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        assert await grant(databricks_emulator, form) == 200
    by_scope = databricks_emulator.stats()["identity"]["token_requests"]["by_scope"]
    assert by_scope == {"client_credentials": {"all-apis": 1, "sql offline_access": 1, "": 1}}


async def test_azure_headers_are_recorded_per_call_without_the_token(
    databricks_emulator: DatabricksEmulator,
) -> None:
    management_token = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJtYW5hZ2VtZW50In0.c2lnbmF0dXJl"
    async with open_api(databricks_emulator) as api:
        url = databricks_emulator.url + "/api/2.2/jobs/runs/list"
        plain = databricks_emulator.headers()
        both = {**plain, MANAGEMENT: management_token, RESOURCE: RESOURCE_ID}
        for headers in (both, plain):
            async with api.http.get(url, headers=headers) as resp:
                assert resp.status == 200
    recorded = databricks_emulator.stats()["azure_headers"]
    assert (recorded["total"], recorded["with_management_token"]) == (2, 1)
    assert recorded["by_resource_id"] == {RESOURCE_ID: 1}
    first, second = recorded["calls"]
    assert (first["management_token"], first["resource_id"]) == (True, RESOURCE_ID)
    assert (second["management_token"], second["resource_id"]) == (False, None)
    assert first["path"] == "/api/2.2/jobs/runs/list"
    assert management_token not in str(databricks_emulator.stats())


async def test_a_refused_call_is_not_recorded(databricks_emulator: DatabricksEmulator) -> None:
    async with open_api(databricks_emulator) as api:
        reply = await api.call("GET", "runs/list", token="dapi-not-a-known-token-000000")
    assert reply.status in (401, 403)
    assert databricks_emulator.stats()["azure_headers"]["total"] == 0
