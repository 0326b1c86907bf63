"""OAuth scopes per identity (default all-apis), as the token endpoint receives them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.identity.builders import Builder
from gateway.identity.cache import TokenCache
from gateway.identity.strategy import Plan, WorkspaceRef
from gateway.settings import IdentityOptions, OAuthM2MIdentity, PodTokenFederation
from tests.databricks.scripted import Reply, ScriptedServer
from tests.support.jwt_issuer import Issuer, service_account_subject

TOKEN_PATH = "/oidc/v1/token"
GRANT = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)


@pytest.fixture
async def cache() -> AsyncIterator[TokenCache]:
    made = TokenCache()
    yield made
    await made.aclose()


def builder(
    session: aiohttp.ClientSession, server: ScriptedServer, cache: TokenCache, **options: Any
) -> Builder:
    tokens = TokenClient(session, endpoints={server.url: server.url + TOKEN_PATH}, retry=QUICK)
    return Builder(session, cache, IdentityOptions(**options), None, tokens=tokens)


def m2m(server: ScriptedServer, scopes: tuple[str, ...] | None) -> Plan:
    return Plan(
        "oauth-m2m",
        WorkspaceRef("ws", server.url),
        "tenant policy",
        client_id="sp-1",
        inline_secret=SecretStr("dose-0123456789"),
        scopes=scopes,
    )


@pytest.mark.parametrize(
    ("scopes", "options", "sent"),
    [
        (None, {}, "all-apis"),
        (("sql", "offline_access"), {}, "sql offline_access"),
        (None, {"oauth_scopes": ["jobs", "offline_access"]}, "jobs offline_access"),
    ],
    ids=["default", "the-identitys", "the-gateways-default"],
)
async def test_client_credentials_ask_for_the_identitys_scopes(
    session: aiohttp.ClientSession,
    server: ScriptedServer,
    cache: TokenCache,
    scopes: tuple[str, ...] | None,
    options: dict[str, Any],
    sent: str,
) -> None:
    server.script("POST", TOKEN_PATH, Reply(json=GRANT))
    made = builder(session, server, cache, **options)
    assert await made.credential(m2m(server, scopes), "team-a", lambda: None).token() == "at-1"
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert seen.form()["scope"] == sent


async def test_an_exchange_asks_for_the_identitys_scopes(
    session: aiohttp.ClientSession, server: ScriptedServer, cache: TokenCache, tmp_path: Any
) -> None:
    server.script("POST", TOKEN_PATH, Reply(json=GRANT))
    token_file = tmp_path / "token"
    token_file.write_text(Issuer().sign(service_account_subject("team-a", "etl")))
    plan = Plan(
        "pod-token-federation",
        WorkspaceRef("ws", server.url),
        "tenant policy",
        client_id="sp-1",
        token_file=str(token_file),
        scopes=("sql",),
    )
    await builder(session, server, cache).credential(plan, "team-a", lambda: None).token()
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert (seen.form()["grant_type"], seen.form()["scope"]) == (
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "sql",
    )


@pytest.mark.parametrize("bad", [[], ["all apis"], ['"sql"'], ["sql", "sql"]])
def test_a_scope_that_is_no_scope_token_is_refused(bad: list[str]) -> None:
    with pytest.raises(ValidationError, match="scope"):
        OAuthM2MIdentity(type="oauth-m2m", client_id="c", client_secret=SecretStr("s"), scopes=bad)
    with pytest.raises(ValidationError, match="scope"):
        IdentityOptions(oauth_scopes=bad)


def test_a_policy_without_scopes_leaves_them_to_the_gateway() -> None:
    assert PodTokenFederation(type="pod-token-federation").scopes is None


@pytest.mark.parametrize("bad", [[], ["Not_A_Name"], ["databricks-oauth", "databricks-oauth"]])
def test_secret_names_must_be_object_names_given_once(bad: list[str]) -> None:
    with pytest.raises(ValidationError):
        IdentityOptions(secret_names=bad)
