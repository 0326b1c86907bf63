"""OIDC federation: RFC 8693 token exchange of projected and minted ServiceAccount tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.databricks import oauth
from gateway.databricks.retries import RetryPolicy
from gateway.errors import TokenEndpointError
from gateway.identity import sources
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from tests.databricks.scripted import Reply, ScriptedServer
from tests.fixtures.databricks_emulator import (
    DatabricksEmulator,
    EmulatorFactory,
    emulator_config,
)
from tests.identity.issuer import AUDIENCE, Issuer, Minter, service_account_subject
from tests.identity.test_sources import workspace_status

TOKEN_PATH = "/oidc/v1/token"
SP_ID = "9a0e6b7c-1d2e-4f30-8a41-5b6c7d8e9f00"
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)


def federated_sp(name: str, application_id: str, policy: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "application_id": application_id, "federation_policies": [policy]}


async def start_with(factory: EmulatorFactory, **identity: Any) -> DatabricksEmulator:
    return await factory(emulator_config(identity=identity))


# --- the grant ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", [SP_ID, None])
async def test_exchange_sends_the_rfc_8693_form_without_client_auth(
    session: aiohttp.ClientSession, server: ScriptedServer, client_id: str | None
) -> None:
    """Grant, subject token and its type, scope, client_id if any; no Authorization header."""
    grant = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 600}
    server.script("POST", TOKEN_PATH, Reply(json=grant))
    token = await oauth.exchange_token(
        session,
        server.url + TOKEN_PATH,
        "subject.jwt.value",
        client_id=client_id,
        namespace="team-a",
        clock=lambda: 100.0,
    )
    assert (token.value, token.expires_at) == ("at-1", 700.0)
    (seen,) = server.requests("POST", TOKEN_PATH)
    assert "Authorization" not in seen.headers
    expected = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "subject.jwt.value",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "all-apis",
    }
    if client_id is not None:
        expected["client_id"] = client_id
    assert seen.form() == expected


async def test_a_policy_mismatch_is_a_permanent_token_endpoint_error(
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    issuer: Issuer,
) -> None:
    """A JWT for the wrong audience is refused with invalid_grant, not retried."""
    subject = service_account_subject("team-a", "etl")
    sp = federated_sp("etl", SP_ID, issuer.policy(subject))
    emulator = await start_with(databricks_emulator_factory, service_principals=[sp])
    with pytest.raises(TokenEndpointError) as raised:
        await oauth.exchange_token(
            session,
            emulator.url + TOKEN_PATH,
            issuer.sign(subject, aud="someone-else"),
            client_id=SP_ID,
            namespace="team-a",
            retry=QUICK,
        )
    assert raised.value.error_code == "invalid_grant"
    assert (raised.value.source, raised.value.transient) == ("federation", False)


# --- federated(): projected token files -----------------------------------------------------


async def test_a_projected_token_is_exchanged_and_re_read_for_the_next_fetch(
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    """A refused token file is read again on the next fetch; its replacement is exchanged."""
    subject = service_account_subject("team-a", "etl")
    sp = federated_sp("etl", SP_ID, issuer.policy(subject))
    emulator = await start_with(databricks_emulator_factory, service_principals=[sp])
    path = tmp_path / "token"
    path.write_text(issuer.sign(subject, aud="not-for-databricks"))
    fetch = sources.federated(
        session,
        emulator.url,
        sources.token_file(path, namespace="team-a"),
        client_id=SP_ID,
        namespace="team-a",
        retry=QUICK,
    )
    with pytest.raises(TokenEndpointError, match="audience"):
        await fetch()
    path.write_text(issuer.sign(subject))
    token = await fetch()
    assert await workspace_status(session, emulator, token.value) == 200


async def test_without_client_id_the_account_wide_policy_applies(
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    issuer: Issuer,
) -> None:
    """No client_id: the account policy maps the JWT's subject to a service principal."""
    account_policy = {"issuer": issuer.iss, "audiences": [AUDIENCE], "jwks_json": issuer.jwks()}
    emulator = await start_with(
        databricks_emulator_factory,
        service_principals=[{"name": "etl", "application_id": SP_ID}],
        federation_policies=[account_policy],
    )

    async def subject_token() -> str:
        return issuer.sign(SP_ID)

    fetch = sources.federated(
        session, emulator.url, subject_token, client_id=None, namespace="team-a", retry=QUICK
    )
    token = await fetch()
    assert await workspace_status(session, emulator, token.value) == 200


# --- federated(): minted ServiceAccount tokens ----------------------------------------------


async def test_2000_submissions_over_100_namespaces_mint_and_exchange_100_times(
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    served_issuer: Issuer,
) -> None:
    """Minted tokens share the cache: a cold burst costs one TokenRequest and one exchange
    per namespace, and every namespace gets a token its own service principal can use."""
    namespaces = [f"team-{n:03d}" for n in range(100)]
    sps = [
        federated_sp(
            ns,
            f"00000000-0000-4000-8000-{n:012d}",
            served_issuer.policy(
                service_account_subject(ns, "etl"), jwks_uri=served_issuer.jwks_uri
            ),
        )
        for n, ns in enumerate(namespaces)
    ]
    emulator = await start_with(databricks_emulator_factory, service_principals=sps)
    cache, mint = TokenCache(), Minter(served_issuer)
    credentials = [
        CachedCredential(
            cache,
            CacheKey(ns, "federation:sa/etl", emulator.url),
            sources.federated(
                session,
                emulator.url,
                sources.minted_service_account_token(cache, mint, ns, "etl", AUDIENCE),
                client_id=sp["application_id"],
                namespace=ns,
                token_endpoint=emulator.url + TOKEN_PATH,
            ),
            kind="federation",
            namespace=ns,
        )
        for ns, sp in zip(namespaces, sps, strict=True)
    ]

    async def submit(i: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return i % 100, await credentials[i % 100].token()

    tokens = dict(await asyncio.gather(*(submit(i) for i in range(2000))))
    assert len(mint.calls) == 100
    assert {(ns, sa, tuple(aud), exp) for ns, sa, aud, exp in mint.calls} == {
        (ns, "etl", (AUDIENCE,), 600) for ns in namespaces
    }
    stats = emulator.stats()["identity"]["token_requests"]
    assert stats["by_grant_type"] == {"token_exchange": 100}
    assert len(cache) == 200
    assert await workspace_status(session, emulator, tokens[7]) == 200
    await cache.aclose()


def test_a_token_request_shorter_than_kubernetes_allows_is_refused(issuer: Issuer) -> None:
    """The API server mints for at least 600 s; asking for less fails when built."""
    with pytest.raises(ValueError, match="600"):
        sources.minted_service_account_token(TokenCache(), Minter(issuer), "ns", "sa", "aud", 60)
