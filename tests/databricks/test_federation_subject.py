"""Issuer-aware federation, token lifetimes without expires_in, and discovery retries.

The exchange looks at its subject first (databricks-sql-python's token federation): a JWT the
workspace issued is used as is, anything that is not a JWT is refused unsent. Counts are the
requests the scripted workspace received.
"""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from gateway.databricks import oauth, subject
from gateway.databricks.auth import AccessToken
from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.errors import IdentityMisconfigured
from tests.databricks.scripted import Reply, ScriptedServer
from tests.support.jwt_issuer import Issuer, service_account_subject, shared_rsa_key, sign

TOKEN_PATH = "/oidc/v1/token"
DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
QUICK = RetryPolicy(deadline=2.0, initial=0.01, maximum=0.02)
SUBJECT = service_account_subject("team-a", "etl")


def configured(session: aiohttp.ClientSession, server: ScriptedServer) -> TokenClient:
    return TokenClient(session, endpoints={server.url: server.url + TOKEN_PATH}, retry=QUICK)


def workspace_jwt(iss: str, *, exp: int | None = None) -> str:
    claims: dict[str, object] = {"iss": iss, "sub": "sp-1", "aud": "all-apis"}
    if exp is not None:
        claims["exp"] = exp
    return sign(claims, shared_rsa_key(), "ws-key")


# --- what the subject is (pure) -------------------------------------------------------------


def test_a_signed_jwt_yields_its_claims() -> None:
    token = Issuer().sign(SUBJECT)
    found = subject.claims(token)
    assert found is not None
    assert found["sub"] == SUBJECT


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("dapi0123456789abcdef0123456789abcdef", "Databricks personal access token"),
        ("a.b.c", "three dot-separated parts"),
        ("e30.e30.sig.x.y", "encrypted JWT"),
        ("opaque-token-value", "opaque token of 18 characters"),
    ],
)
def test_what_is_not_a_jwt_is_described_without_being_quoted(token: str, said: str) -> None:
    assert subject.claims(token) is None
    described = subject.not_a_jwt(token)
    assert said in described
    assert token not in described


@pytest.mark.parametrize(
    ("iss", "host", "same"),
    [
        ("https://ws.example/oidc", "https://ws.example", True),
        ("https://WS.example:443", "https://ws.example", True),
        ("ws.example", "https://ws.example/", True),
        ("https://test1.example", "https://test2.example", False),
        ("https://ws.example.evil", "https://ws.example", False),
        ("", "https://ws.example", False),
    ],
)
def test_the_issuer_is_compared_as_a_host(iss: str, host: str, same: bool) -> None:
    assert subject.issued_by({"iss": iss}, host) is same


# --- the exchange looks first ---------------------------------------------------------------


async def test_a_pat_in_a_token_file_is_never_sent_as_a_subject_token(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """The refusal is a 422 that says what was found, and the workspace sees nothing."""
    pat = "dapi0123456789abcdef0123456789abcdef"
    with pytest.raises(IdentityMisconfigured) as raised:
        await configured(session, server).exchange(
            server.url, pat, client_id=None, namespace="team-a"
        )
    assert raised.value.status == 422
    assert "personal access token" in str(raised.value)
    assert pat not in str(raised.value)
    assert server.seen == []


async def test_a_jwt_the_workspace_issued_is_used_as_is(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """No exchange: the workspace's own token is its bearer token, until its exp."""
    exp = int(time.time()) + 900
    token = workspace_jwt(f"{server.url}/oidc", exp=exp)
    got = await configured(session, server).exchange(
        server.url + "/", token, client_id="sp-1", namespace="team-a"
    )
    assert got == AccessToken(token, expires_at=float(exp))
    assert server.seen == []


async def test_a_workspace_jwt_without_exp_lives_an_hour(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    token = workspace_jwt(server.url)
    client = TokenClient(session, endpoints={}, clock=lambda: 1000.0)
    assert await client.exchange(server.url, token, client_id=None, namespace="t") == AccessToken(
        token, expires_at=4600.0
    )


async def test_a_jwt_of_another_issuer_is_exchanged_per_rfc_8693(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    server.script(
        "POST",
        TOKEN_PATH,
        Reply(json={"access_token": "at-1", "token_type": "Bearer", "expires_in": 600}),
    )
    token = Issuer().sign(SUBJECT)
    got = await configured(session, server).exchange(
        server.url, token, client_id="sp-1", namespace="team-a"
    )
    assert got.value == "at-1"
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert seen.form() == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "all-apis",
        "client_id": "sp-1",
    }
    assert "Authorization" not in seen.headers


# --- lifetimes ------------------------------------------------------------------------------


def parse(payload: dict[str, object]) -> AccessToken:
    return oauth.parse_token_response(
        200, json.dumps(payload), endpoint="e", namespace="t", source="s", now=1000.0
    )


def test_without_expires_in_the_access_tokens_exp_counts() -> None:
    token = workspace_jwt("https://ws.example", exp=2500)
    assert parse({"access_token": token}) == AccessToken(token, expires_at=2500.0)


def test_without_expires_in_or_exp_a_token_lives_an_hour() -> None:
    assert parse({"access_token": "opaque-at"}) == AccessToken("opaque-at", expires_at=4600.0)


# --- discovery retries ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_discovery_retries_throttling_and_server_errors(
    session: aiohttp.ClientSession, server: ScriptedServer, status: int
) -> None:
    endpoint = f"{server.url}/oidc/v1/custom-token"
    server.script(
        "GET",
        DISCOVERY,
        Reply(status, headers={"Retry-After": "0"}),
        Reply(status),
        Reply(json={"token_endpoint": endpoint}),
    )
    client = TokenClient(session, retry=QUICK)
    assert await client.endpoint(server.url) == endpoint
    assert len(server.requests("GET", DISCOVERY)) == 3
    await client.aclose()


async def test_discovery_does_not_retry_a_404(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    server.script("GET", DISCOVERY, Reply(404), Reply(json={"token_endpoint": "x"}))
    client = TokenClient(session, retry=QUICK)
    assert await client.endpoint(server.url) == server.url + TOKEN_PATH
    assert len(server.requests("GET", DISCOVERY)) == 1
    await client.aclose()


async def test_discovery_that_keeps_failing_falls_back_and_is_asked_again_later(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    server.always("GET", DISCOVERY, Reply(503))
    client = TokenClient(session, retry=RetryPolicy(deadline=0.05, initial=0.01, maximum=0.01))
    assert await client.endpoint(server.url) == server.url + TOKEN_PATH
    assert len(server.requests("GET", DISCOVERY)) >= 2
    await client.aclose()


async def test_every_spelling_of_a_host_shares_one_discovery(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    endpoint = f"{server.url}/oidc/v1/custom-token"
    server.always("GET", DISCOVERY, Reply(json={"token_endpoint": endpoint}))
    client = TokenClient(session, retry=QUICK)
    bare = server.url.removeprefix("http://")
    for spelling in (server.url, server.url + "/", server.url + "/some/path", f"http://{bare}/"):
        assert await client.endpoint(spelling) == endpoint
    assert len(server.requests("GET", DISCOVERY)) == 1
    await client.aclose()
