"""The emulator's Git Credentials API (reference section 7): each principal's own
credentials, one per provider, the token written but never read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fixtures.databricks_emulator import DatabricksEmulator

PATH = "/api/2.0/git-credentials"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    emulator: DatabricksEmulator,
    method: str,
    suffix: str = "",
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    async with http.request(
        method, f"{emulator.url}{PATH}{suffix}", json=body, headers=emulator.headers(token)
    ) as resp:
        return resp.status, await resp.json()


def ado(token: str = "ado-pat-000000000000") -> dict[str, Any]:
    return {
        "git_provider": "azureDevOpsServices",
        "git_username": "etl-bot",
        "personal_access_token": token,
    }


async def test_a_principal_starts_with_no_credentials(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """GET answers {} (no 'credentials' member) while the principal has none."""
    assert await call(http, databricks_emulator, "GET") == (200, {})


async def test_create_answers_the_credential_without_its_token(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """POST creates and answers id, provider and username; the token is in no answer."""
    status, created = await call(http, databricks_emulator, "POST", body=ado())
    assert status == 200
    assert set(created) == {"credential_id", "git_provider", "git_username"}
    assert created["git_provider"] == "azureDevOpsServices"
    _, listed = await call(http, databricks_emulator, "GET")
    assert listed == {"credentials": [created]}
    _, one = await call(http, databricks_emulator, "GET", f"/{created['credential_id']}")
    assert one == created
    assert "ado-pat" not in str(listed) + str(one)


async def test_a_second_credential_for_a_provider_is_refused_409(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """One credential per provider, whatever its spelling: the second create answers 409
    RESOURCE_ALREADY_EXISTS; another provider is allowed."""
    assert (await call(http, databricks_emulator, "POST", body=ado()))[0] == 200
    again = {**ado(), "git_provider": "AZUREDEVOPSSERVICES"}
    status, body = await call(http, databricks_emulator, "POST", body=again)
    assert status == 409
    assert body["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert "Only one credential per provider is allowed" in body["message"]
    other = {**ado(), "git_provider": "gitHub"}
    assert (await call(http, databricks_emulator, "POST", body=other))[0] == 200


async def test_update_and_delete_by_id(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """PATCH (git_provider required) and DELETE answer {}; a deleted id is 404."""
    _, created = await call(http, databricks_emulator, "POST", body=ado())
    suffix = f"/{created['credential_id']}"
    status, body = await call(http, databricks_emulator, "PATCH", suffix, {"git_username": "x"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    patched = {**ado("ado-pat-111111111111"), "git_username": "renamed"}
    assert await call(http, databricks_emulator, "PATCH", suffix, patched) == (200, {})
    assert (await call(http, databricks_emulator, "GET", suffix))[1]["git_username"] == "renamed"
    assert await call(http, databricks_emulator, "DELETE", suffix) == (200, {})
    status, body = await call(http, databricks_emulator, "GET", suffix)
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_credentials_belong_to_the_calling_principal(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """Another principal neither lists, reads, updates nor deletes my credential, and may
    hold its own for the same provider."""
    _, mine = await call(http, databricks_emulator, "POST", body=ado())
    other = databricks_emulator.other_pat
    suffix = f"/{mine['credential_id']}"
    assert await call(http, databricks_emulator, "GET", token=other) == (200, {})
    assert (await call(http, databricks_emulator, "GET", suffix, token=other))[0] == 404
    assert (await call(http, databricks_emulator, "PATCH", suffix, ado(), token=other))[0] == 404
    assert (await call(http, databricks_emulator, "DELETE", suffix, token=other))[0] == 404
    assert (await call(http, databricks_emulator, "POST", body=ado(), token=other))[0] == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"git_username": "x"}, "git_provider is required"),
        ({"git_provider": "sourceForge"}, "Invalid Git provider"),
    ],
)
async def test_a_create_without_a_known_provider_is_refused_400(
    http: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
    body: dict[str, Any],
    message: str,
) -> None:
    """git_provider is required and must be one Databricks knows."""
    status, answer = await call(http, databricks_emulator, "POST", body=body)
    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert message in answer["message"]


async def test_the_api_needs_a_valid_bearer_token(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """Like every workspace API, an unknown token is refused (403 Invalid access token)."""
    status, body = await call(http, databricks_emulator, "GET", token="dapi-not-a-known-token")
    assert status == 403
    assert body["message"] == "Invalid access token."


async def test_the_admin_view_describes_tokens_without_showing_them(
    http: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """GET /emulator/git-credentials lists every principal's credentials with what their
    token is (here: no Entra token) and never the token."""
    await call(http, databricks_emulator, "POST", body=ado("ado-pat-secret-value-1"))
    async with http.get(f"{databricks_emulator.url}/emulator/git-credentials") as resp:
        assert resp.status == 200
        text = await resp.text()
        body = await resp.json()
    assert "ado-pat-secret-value-1" not in text
    (one,) = body["credentials"]
    assert one["principal"] == databricks_emulator.user
    assert one["token_resource"] is None
    assert one["token_valid"] is False
    assert body["ops"] == {"create": 1}
