"""The OAuth token endpoint helpers: discovery, the client-credentials grant, its errors."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.databricks.retries import RetryPolicy
from gateway.errors import TokenEndpointError
from tests.databricks.scripted import Reply, ScriptedServer
from tests.support.clock import Sleeps

TOKEN_PATH = "/oidc/v1/token"
DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
SECRET = "dose0123456789abcdef0123"
GRANTED = {"access_token": "eyJ.at-1", "token_type": "Bearer", "expires_in": 3600}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


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
        ({k: v for k, v in GRANTED.items() if k != "expires_in"}, "", "expires_in"),
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
    assert await oauth.discover_token_endpoint(session, server.url) == endpoint


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
        endpoint = await oauth.discover_token_endpoint(session, server.url)
    assert endpoint == server.url + TOKEN_PATH
    assert logs[0]["event"] in ("oauth_discovery_failed", "oauth_discovery_foreign_endpoint")


# --- the client-credentials grant -----------------------------------------------------------


async def test_client_credentials_uses_basic_auth_and_a_form(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Client id and secret go in HTTP Basic; grant type and scope in a form body."""
    server.script("POST", TOKEN_PATH, Reply(json=GRANTED))
    token = await oauth.client_credentials(
        session, server.url + TOKEN_PATH, "sp-1", SECRET, namespace="team-a", clock=lambda: 50.0
    )
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
    token = await oauth.client_credentials(
        session,
        server.url + TOKEN_PATH,
        "sp-1",
        SECRET,
        namespace="team-a",
        retry=RetryPolicy(deadline=30, initial=0.01, maximum=0.02, sleep=sleeps),
    )
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
        await oauth.client_credentials(
            session, server.url + TOKEN_PATH, "sp-1", SECRET, namespace="team-a"
        )
    assert raised.value.namespace == "team-a"
    assert raised.value.source == "oauth-m2m"
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_an_unreachable_endpoint_is_transient(session: aiohttp.ClientSession) -> None:
    """A refused connection, past the deadline, is a transient TokenEndpointError."""
    with pytest.raises(TokenEndpointError, match="could not be reached") as raised:
        await oauth.client_credentials(
            session,
            "http://127.0.0.1:9/oidc/v1/token",
            "sp-1",
            SECRET,
            namespace="team-a",
            retry=RetryPolicy(deadline=0.05, initial=0.01, maximum=0.01),
        )
    assert raised.value.transient
    assert isinstance(raised.value.__cause__, aiohttp.ClientError)


async def test_the_secret_never_reaches_the_logs(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Retries of the token request are logged without the client secret."""
    server.script("POST", TOKEN_PATH, Reply(503), Reply(json=GRANTED))
    with capture_logs() as logs:
        await oauth.client_credentials(
            session,
            server.url + TOKEN_PATH,
            "sp-1",
            SECRET,
            namespace="team-a",
            retry=RetryPolicy(deadline=5, initial=0.01, maximum=0.02),
        )
    assert [e["event"] for e in logs] == ["token_endpoint_retrying"]
    assert not any(SECRET in str(v) or "at-1" in str(v) for e in logs for v in e.values())
