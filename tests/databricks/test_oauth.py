"""The token client: discovery, the client-credentials, token-exchange and Entra grants, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.errors import TokenEndpointError
from tests.databricks.scripted import Reply, ScriptedServer
from tests.fixtures.databricks_emulator import EmulatorFactory, emulator_config
from tests.support.clock import Sleeps
from tests.support.jwt_issuer import Issuer, service_account_subject

TOKEN_PATH = "/oidc/v1/token"
DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
SECRET = "dose0123456789abcdef0123"
GRANTED = {"access_token": "eyJ.at-1", "token_type": "Bearer", "expires_in": 3600}
SP_ID = "9a0e6b7c-1d2e-4f30-8a41-5b6c7d8e9f00"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_PATH = f"/{TENANT}/oauth2/v2.0/token"
ENTRA_CLIENT_ID = "3c1b0f9e-2a4d-4c5e-8f60-718293a4b5c6"
ENTRA_SECRET = "Zx8Q~entra-client-secret-value-000000000"
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)


def configured(session: aiohttp.ClientSession, server: ScriptedServer, **kw: Any) -> TokenClient:
    """A client that knows the scripted server's token endpoint, so nothing is discovered."""
    return TokenClient(session, endpoints={server.url: server.url + TOKEN_PATH}, **kw)


def parse(status: int, payload: Any = None, text: str = "") -> AccessToken:
    body = json.dumps(payload) if payload is not None else text
    return oauth.parse_token_response(
        status,
        body,
        endpoint="https://h/oidc/v1/token",
        namespace="team-a",
        source="m2m",
        now=1000.0,
    )


# --- parsing (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        GRANTED,
        {**GRANTED, "token_type": "bearer", "scope": "all-apis"},
        {**GRANTED, "expires_in": "3600"},
        {"access_token": "eyJ.at-1", "expires_in": 3600},
    ],
)
def test_a_grant_becomes_a_token_expiring_after_expires_in(payload: dict[str, Any]) -> None:
    """expires_in counts from the time the request was sent."""
    assert parse(200, payload) == AccessToken("eyJ.at-1", expires_at=4600.0)


@pytest.mark.parametrize(
    ("payload", "text", "problem"),
    [
        ({"token_type": "Bearer", "expires_in": 3600}, "", "no access_token"),
        ({**GRANTED, "token_type": "mac"}, "", "not Bearer"),
        ({**GRANTED, "expires_in": 0}, "", "expires_in"),
        ({**GRANTED, "expires_in": True}, "", "expires_in"),
        ({**GRANTED, "expires_in": "soon"}, "", "expires_in"),
        (None, "<html>ok</html>", "not a JSON object"),
    ],
)
def test_a_malformed_grant_is_refused(payload: Any, text: str, problem: str) -> None:
    """A 200 that does not carry a usable token is an error, not a token."""
    with pytest.raises(TokenEndpointError, match=problem) as raised:
        parse(200, payload, text)
    assert raised.value.namespace == "team-a"
    assert not raised.value.transient


@pytest.mark.parametrize(
    ("status", "payload", "text", "code", "transient", "words"),
    [
        (
            401,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            "",
            "invalid_client",
            False,
            "invalid_client: Client authentication failed",
        ),
        (400, {"error": "invalid_scope"}, "", "invalid_scope", False, "invalid_scope"),
        (
            400,
            {"errorCode": "invalid_request", "errorSummary": "bad grant"},
            "",
            "invalid_request",
            False,
            "invalid_request: bad grant",
        ),
        (429, {"error": "slow_down"}, "", "slow_down", True, "slow_down"),
        (503, None, "<html> upstream  down </html>", None, True, "<html> upstream down </html>"),
        (500, None, "", None, True, "HTTP 500"),
    ],
)
def test_refusals_map_to_token_endpoint_errors(
    status: int, payload: Any, text: str, code: str | None, transient: bool, words: str
) -> None:
    """OAuth error JSON keeps its code and description; 429 and 5xx are transient."""
    with pytest.raises(TokenEndpointError) as raised:
        parse(status, payload, text)
    error = raised.value
    assert (error.http_status, error.error_code, error.transient) == (status, code, transient)
    assert words in error.message
    assert error.namespace == "team-a"


# --- discovery ------------------------------------------------------------------------------


async def test_discovery_returns_the_token_endpoint(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """The discovery document's token_endpoint is used when it is on the workspace host."""
    endpoint = f"{server.url}/oidc/v1/custom-token"
    server.script("GET", DISCOVERY, Reply(json={"token_endpoint": endpoint}))
    assert (await oauth.discover(session, server.url)).endpoint == endpoint


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, json={"error_code": "NOT_FOUND"}),
        Reply(text="not json"),
        Reply(json={"issuer": "x"}),
        Reply(json={"token_endpoint": "https://harvest.example/token"}),
        Reply(action="drop"),
    ],
)
async def test_discovery_falls_back_to_the_standard_path(
    session: aiohttp.ClientSession, server: ScriptedServer, reply: Reply
) -> None:
    """A failed, empty or foreign discovery answer means {host}/oidc/v1/token."""
    server.script("GET", DISCOVERY, reply, reply)
    with capture_logs() as logs:
        endpoint = (await oauth.discover(session, server.url)).endpoint
    assert endpoint == server.url + TOKEN_PATH
    assert logs[-1]["event"] in ("oauth_discovery_failed", "oauth_discovery_foreign_endpoint")


async def test_the_client_discovers_each_host_once(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """However many grants ask at once, one discovery GET finds a host's endpoint for good."""
    endpoint = f"{server.url}/oidc/v1/custom-token"
    server.always("GET", DISCOVERY, Reply(json={"token_endpoint": endpoint}, delay=0.05))
    client = TokenClient(session)
    found = await asyncio.gather(*(client.endpoint(server.url + "/") for _ in range(20)))
    assert set(found) == {endpoint}
    assert await client.endpoint(server.url) == endpoint
    assert len(server.requests("GET", DISCOVERY)) == 1
    await client.aclose()


async def test_a_configured_endpoint_is_never_discovered(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """An endpoint given to the client for a host is used as is, with no discovery GET."""
    assert await configured(session, server).endpoint(server.url) == server.url + TOKEN_PATH
    assert server.requests("GET", DISCOVERY) == []


# --- the client-credentials grant -----------------------------------------------------------


async def test_client_credentials_uses_basic_auth_and_a_form(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Client id and secret go in HTTP Basic; grant type and scope in a form body."""
    server.script("POST", TOKEN_PATH, Reply(json=GRANTED))
    client = configured(session, server, clock=lambda: 50.0)
    token = await client.client_credentials(server.url, "sp-1", SECRET, namespace="team-a")
    assert token == AccessToken("eyJ.at-1", expires_at=3650.0)
    (seen,) = server.requests("POST", TOKEN_PATH)
    scheme, _, encoded = seen.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"sp-1:{SECRET}"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.form() == {"grant_type": "client_credentials", "scope": "all-apis"}


async def test_transient_failures_are_retried_after_retry_after(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """429 with Retry-After, then a dropped connection, then a grant."""
    sleeps = Sleeps()
    server.script(
        "POST",
        TOKEN_PATH,
        Reply(429, json={"error": "slow_down"}, headers={"Retry-After": "3"}),
        Reply(action="drop"),
        Reply(json=GRANTED),
    )
    retry = RetryPolicy(deadline=30, initial=0.01, maximum=0.02, sleep=sleeps)
    client = configured(session, server, retry=retry)
    token = await client.client_credentials(server.url, "sp-1", SECRET, namespace="team-a")
    assert token.value == "eyJ.at-1"
    assert sleeps.calls[0] >= 3
    assert sleeps.calls[1] < 1
    assert len(server.requests("POST", TOKEN_PATH)) == 3


async def test_a_wrong_secret_fails_at_once(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """invalid_client is raised after one request, naming the namespace."""
    body = {"error": "invalid_client", "error_description": "Client authentication failed"}
    server.always("POST", TOKEN_PATH, Reply(401, json=body))
    with pytest.raises(TokenEndpointError, match="Client authentication failed") as raised:
        await configured(session, server).client_credentials(
            server.url, "sp-1", SECRET, namespace="team-a"
        )
    assert raised.value.namespace == "team-a"
    assert raised.value.source == "oauth-m2m"
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_an_unreachable_endpoint_is_transient(session: aiohttp.ClientSession) -> None:
    """A refused connection, past the deadline, is a transient TokenEndpointError."""
    client = TokenClient(
        session,
        retry=RetryPolicy(deadline=0.05, initial=0.01, maximum=0.01),
        endpoints={"http://127.0.0.1:9": "http://127.0.0.1:9/oidc/v1/token"},
    )
    with pytest.raises(TokenEndpointError, match="could not be reached") as raised:
        await client.client_credentials("http://127.0.0.1:9", "sp-1", SECRET, namespace="team-a")
    assert raised.value.transient
    assert isinstance(raised.value.__cause__, aiohttp.ClientError)


async def test_the_secret_never_reaches_the_logs(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Retries of the token request are logged without the client secret."""
    server.script("POST", TOKEN_PATH, Reply(503), Reply(json=GRANTED))
    with capture_logs() as logs:
        client = configured(
            session, server, retry=RetryPolicy(deadline=5, initial=0.01, maximum=0.02)
        )
        await client.client_credentials(server.url, "sp-1", SECRET, namespace="team-a")
    assert [e["event"] for e in logs] == ["token_endpoint_retrying"]
    assert not any(SECRET in str(v) or "at-1" in str(v) for e in logs for v in e.values())


# --- the token-exchange grant ---------------------------------------------------------------


@pytest.mark.parametrize("client_id", [SP_ID, None])
async def test_exchange_sends_the_rfc_8693_form_without_client_auth(
    session: aiohttp.ClientSession, server: ScriptedServer, client_id: str | None
) -> None:
    """Grant, subject token and its type, scope, client_id if any; no Authorization header."""
    grant = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 600}
    server.script("POST", TOKEN_PATH, Reply(json=grant))
    subject_jwt = Issuer().sign(service_account_subject("team-a", "etl"))
    token = await configured(session, server, clock=lambda: 100.0).exchange(
        server.url, subject_jwt, client_id=client_id, namespace="team-a"
    )
    assert (token.value, token.expires_at) == ("at-1", 700.0)
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert "Authorization" not in seen.headers
    expected = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject_jwt,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "all-apis",
    }
    if client_id is not None:
        expected["client_id"] = client_id
    assert seen.form() == expected


async def test_a_policy_mismatch_is_a_permanent_token_endpoint_error(
    session: aiohttp.ClientSession, databricks_emulator_factory: EmulatorFactory
) -> None:
    """A JWT for the wrong audience is refused with invalid_grant, not retried."""
    issuer = Issuer()
    subject = service_account_subject("team-a", "etl")
    sp = {"name": "etl", "application_id": SP_ID, "federation_policies": [issuer.policy(subject)]}
    emulator = await databricks_emulator_factory(
        emulator_config(identity={"service_principals": [sp]})
    )
    with pytest.raises(TokenEndpointError) as raised:
        await TokenClient(session, retry=QUICK).exchange(
            emulator.url,
            issuer.sign(subject, aud="someone-else"),
            client_id=SP_ID,
            namespace="team-a",
        )
    assert raised.value.error_code == "invalid_grant"
    assert (raised.value.source, raised.value.transient) == ("federation", False)


# --- Entra ID -------------------------------------------------------------------------------


def test_the_entra_endpoint_is_the_tenants_v2_endpoint() -> None:
    """The authority's trailing slash is optional; the tenant stays one path segment."""
    expected = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert oauth.entra_token_endpoint("https://login.microsoftonline.com/", TENANT) == expected
    assert oauth.entra_token_endpoint("https://login.microsoftonline.com", TENANT) == expected
    escaped = oauth.entra_token_endpoint("https://a.example/", "x/../y")
    assert escaped == "https://a.example/x%2F..%2Fy/oauth2/v2.0/token"


async def with_entra_secret(client: TokenClient, server: ScriptedServer) -> AccessToken:
    """The client-secret grant at the scripted server as Entra ID."""
    proof = {"client_secret": ENTRA_SECRET}
    return await client.entra(
        server.url, TENANT, ENTRA_CLIENT_ID, proof, namespace="team-a", source="azure-client-secret"
    )


@pytest.mark.parametrize("expires_in", [3599, "3599"])
async def test_an_entra_client_secret_goes_in_the_form_and_a_string_expiry_is_read(
    session: aiohttp.ClientSession, server: ScriptedServer, expires_in: int | str
) -> None:
    """client_credentials with the secret in the body, no Basic; expires_in may be a string."""
    body = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": expires_in}
    server.script("POST", ENTRA_PATH, Reply(json=body))
    token = await with_entra_secret(TokenClient(session, clock=lambda: 10.0), server)
    assert (token.value, token.expires_at) == ("entra-at-1", 3609.0)
    (seen,) = server.requests("POST", ENTRA_PATH)
    assert "Authorization" not in seen.headers
    assert seen.form() == {
        "grant_type": "client_credentials",
        "client_id": ENTRA_CLIENT_ID,
        "client_secret": ENTRA_SECRET,
        "scope": "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    }


async def test_an_entra_assertion_is_a_jwt_bearer_in_the_form(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """The assertion goes in the form with the jwt-bearer type, and no client secret."""
    body = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": 3599}
    server.script("POST", ENTRA_PATH, Reply(json=body))
    proof = oauth.jwt_assertion("header.claims.signature")
    await TokenClient(session).entra(
        server.url, TENANT, ENTRA_CLIENT_ID, proof, namespace="team-a", source="wi"
    )
    (seen,) = server.requests("POST", ENTRA_PATH)
    assert seen.form() == {
        "grant_type": "client_credentials",
        "client_id": ENTRA_CLIENT_ID,
        "client_assertion_type": oauth.JWT_BEARER_ASSERTION,
        "client_assertion": "header.claims.signature",
        "scope": oauth.AZURE_DATABRICKS_SCOPE,
    }


async def test_a_throttled_entra_request_is_retried_after_retry_after(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """429 with Retry-After is transient: the error carries the hint, the policy waits it."""
    sleeps = Sleeps()
    throttled = Reply(429, json={"error": "temporarily_unavailable"}, headers={"Retry-After": "2"})
    granted = {"access_token": "entra-at-1", "token_type": "Bearer", "expires_in": 3599}
    server.script("POST", ENTRA_PATH, throttled, Reply(json=granted))
    retry = RetryPolicy(deadline=30, initial=0.01, maximum=0.02, sleep=sleeps)
    token = await with_entra_secret(TokenClient(session, retry=retry), server)
    assert token.value == "entra-at-1"
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] >= 2
