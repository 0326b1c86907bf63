"""Entra ID sources: client secret and workload identity, against the emulated Entra ID.

The wire details the emulator does not vary (a numeric-string expires_in, 429 with
Retry-After) are checked against a scripted token endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable, TokenEndpointError
from gateway.identity import sources
from gateway.identity.sources_azure import (
    AZURE_DATABRICKS_SCOPE,
    JWT_BEARER_ASSERTION,
    azure_client_secret,
    azure_workload_identity,
    entra_token_endpoint,
)
from tests.databricks.scripted import Reply, ScriptedServer
from tests.fixtures.databricks_emulator import (
    DatabricksEmulator,
    EmulatorFactory,
    emulator_config,
)
from tests.identity.issuer import Issuer, service_account_subject
from tests.identity.test_sources import workspace_status
from tests.support.clock import Sleeps

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TOKEN_PATH = f"/{TENANT}/oauth2/v2.0/token"
CLIENT_ID = "3c1b0f9e-2a4d-4c5e-8f60-718293a4b5c6"
CLIENT_SECRET = "Zx8Q~entra-client-secret-value-000000000"
WI_CLIENT_ID = "b7a4d2c1-9e3f-4a5b-8c6d-1f2e3d4c5b6a"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
SUBJECT = service_account_subject("team-a", "etl")
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)


def entra_section(issuer: Issuer) -> dict[str, Any]:
    """One tenant: an app with a client secret, and one that trusts the issuer's SA tokens."""
    federated = {"issuer": issuer.iss, "subject": SUBJECT}
    apps = [
        {"client_id": CLIENT_ID, "name": "team-a-secret", "secrets": [CLIENT_SECRET]},
        {"client_id": WI_CLIENT_ID, "name": "team-a-wi", "federated_credentials": [federated]},
    ]
    return {"tenants": [{"tenant_id": TENANT, "apps": apps}]}


@pytest.fixture
async def emulator(
    databricks_emulator_factory: EmulatorFactory, served_issuer: Issuer
) -> DatabricksEmulator:
    """An Azure workspace whose Entra ID tenant knows both apps."""
    config = emulator_config(cloud="AZURE", entra=entra_section(served_issuer))
    return await databricks_emulator_factory(config)


def test_the_token_endpoint_is_the_tenants_v2_endpoint() -> None:
    """The authority's trailing slash is optional; the tenant stays one path segment."""
    expected = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert entra_token_endpoint("https://login.microsoftonline.com/", TENANT) == expected
    assert entra_token_endpoint("https://login.microsoftonline.com", TENANT) == expected
    escaped = entra_token_endpoint("https://a.example/", "x/../y")
    assert escaped == "https://a.example/x%2F..%2Fy/oauth2/v2.0/token"


# --- against the emulated Entra ID ----------------------------------------------------------


async def test_a_client_secret_token_opens_the_workspace(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator
) -> None:
    """An Entra token for the Azure Databricks scope is accepted by the workspace API."""
    fetch = azure_client_secret(session, emulator.url + "/", TENANT, CLIENT_ID, CLIENT_SECRET)
    token = await fetch()
    assert token.expires_at is not None
    assert await workspace_status(session, emulator, token.value) == 200


async def test_an_entra_refusal_becomes_a_permanent_token_endpoint_error(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator
) -> None:
    """A wrong secret is invalid_client (AADSTS7000215): not retried, one line, no secret."""
    wrong = "Zx8Q~not-the-secret-000000000000000000000"
    fetch = azure_client_secret(
        session, emulator.url, TENANT, CLIENT_ID, wrong, namespace="team-a", retry=QUICK
    )
    with pytest.raises(TokenEndpointError, match="AADSTS7000215") as raised:
        await fetch()
    error = raised.value
    assert (error.error_code, error.http_status, error.transient) == ("invalid_client", 401, False)
    assert (error.namespace, error.source) == ("team-a", "azure-client-secret")
    assert wrong not in str(error)
    assert "\n" not in error.message, "Entra's trace lines are folded into one line"


async def test_workload_identity_re_reads_its_token_file_at_each_fetch(
    session: aiohttp.ClientSession,
    emulator: DatabricksEmulator,
    served_issuer: Issuer,
    tmp_path: Path,
) -> None:
    """A refused assertion is read again on the next fetch; the rotated one opens the API."""
    path = tmp_path / "azure-identity-token"
    path.write_text(served_issuer.sign(SUBJECT, aud="not-for-entra"))
    fetch = azure_workload_identity(
        session,
        emulator.url,
        TENANT,
        WI_CLIENT_ID,
        sources.token_file(path),
        namespace="team-a",
        retry=QUICK,
    )
    with pytest.raises(TokenEndpointError, match="assertion audience"):
        await fetch()
    path.write_text(served_issuer.sign(SUBJECT, aud=EXCHANGE_AUDIENCE))
    token = await fetch()
    assert await workspace_status(session, emulator, token.value) == 200


# --- wire details, scripted -----------------------------------------------------------------


@pytest.mark.parametrize("expires_in", [3599, "3599"])
async def test_a_client_secret_goes_in_the_form_and_a_string_expiry_is_read(
    session: aiohttp.ClientSession, server: ScriptedServer, expires_in: int | str
) -> None:
    """client_credentials with the secret in the body, no Basic; expires_in may be a string."""
    body = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": expires_in}
    server.script("POST", TOKEN_PATH, Reply(json=body))
    fetch = azure_client_secret(
        session, server.url, TENANT, CLIENT_ID, CLIENT_SECRET, clock=lambda: 10.0
    )
    token = await fetch()
    assert (token.value, token.expires_at) == ("entra-at-1", 3609.0)
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert "Authorization" not in seen.headers
    assert seen.form() == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    }


async def test_workload_identity_sends_a_jwt_bearer_assertion(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """The assertion goes in the form with the jwt-bearer type, and no client secret."""
    body = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": 3599}
    server.script("POST", TOKEN_PATH, Reply(json=body))

    async def assertion() -> str:
        return "header.claims.signature"

    await azure_workload_identity(session, server.url, TENANT, CLIENT_ID, assertion)()
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert seen.form() == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_assertion_type": JWT_BEARER_ASSERTION,
        "client_assertion": "header.claims.signature",
        "scope": AZURE_DATABRICKS_SCOPE,
    }


async def test_a_throttled_entra_request_is_retried_after_retry_after(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """429 with Retry-After is transient: the error carries the hint, the policy waits it."""
    sleeps = Sleeps()
    throttled = Reply(429, json={"error": "temporarily_unavailable"}, headers={"Retry-After": "2"})
    granted = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": 3599}
    server.script("POST", TOKEN_PATH, throttled, Reply(json=granted))
    retry = RetryPolicy(deadline=30, initial=0.01, maximum=0.02, sleep=sleeps)
    fetch = azure_client_secret(session, server.url, TENANT, CLIENT_ID, CLIENT_SECRET, retry=retry)
    assert (await fetch()).value == "entra-at-1"
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] >= 2


def test_entra_sources_need_their_identifiers(session: aiohttp.ClientSession) -> None:
    """A missing tenant, client id or secret is refused when the source is built."""
    with pytest.raises(CredentialUnavailable, match="tenant id, client id"):
        azure_client_secret(session, "https://a.example/", "", " ", "s", namespace="team-a")
    with pytest.raises(CredentialUnavailable, match="secret"):
        azure_client_secret(session, "https://a.example/", TENANT, CLIENT_ID, "")
