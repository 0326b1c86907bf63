"""JWTs from a configured OIDC issuer (a loopback stand-in for GitHub Actions)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gateway.callers.jwks import IssuerKeys
from gateway.settings import JwtIssuer as JwtIssuerSettings
from tests.callers.conftest import CallersStack, bearer
from tests.callers.issuer import JwtIssuer
from tests.support.jwt_issuer import rsa_key

REPO_A = "example-org/repo-a"


def _callers(**issuer: Any) -> dict[str, Any]:
    return {
        "methods": ["jwt"],
        "jwt_issuers": [
            {
                "issuer": "{issuer}",
                "audiences": ["lakegate"],
                "namespace_claim": "namespace",
                "claim_map": [{"claim": "repository", "values": {REPO_A: ["team-01", "team-02"]}}],
                "jwks_refetch_seconds": 0,
                **issuer,
            }
        ],
    }


async def _status(http: aiohttp.ClientSession, url: str, namespace: str, token: str) -> int:
    async with http.get(f"{url}/v1/namespaces/{namespace}/runs", headers=bearer(token)) as resp:
        return resp.status


async def test_claims_map_a_token_to_namespaces(
    callers_stack: CallersStack, issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """repository maps to team-01 and team-02, namespace names team-03; nothing else opens."""
    stack = await callers_stack(_callers(), issuer=issuer, kubernetes=False)
    by_repo = issuer.sign(repository=REPO_A)
    by_claim = issuer.sign(namespace="team-03", kid="ec-1")
    assert [await _status(http, stack.url, f"team-0{i}", by_repo) for i in range(4)] == [
        403,
        200,
        200,
        403,
    ]
    assert await _status(http, stack.url, "team-03", by_claim) == 200
    assert await _status(http, stack.url, "team-00", by_claim) == 403


@pytest.mark.parametrize(
    ("case", "token_of"),
    [
        ("wrong audience", lambda i: i.sign(namespace="team-00", aud="someone-else")),
        ("expired", lambda i: i.sign(namespace="team-00", lifetime=60, issued_ago=600)),
        ("not yet valid", lambda i: i.sign(namespace="team-00", issued_ago=-600)),
        ("other key, same kid", lambda i: i.sign(namespace="team-00", key=rsa_key())),
        ("unpublished kid", lambda i: i.sign(namespace="team-00", kid="rsa-2")),
        ("unknown issuer", lambda i: i.sign(namespace="team-00", iss="https://evil.example")),
    ],
)
async def test_a_bad_token_is_unauthenticated(
    callers_stack: CallersStack,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
    case: str,
    token_of: Any,
) -> None:
    """Each kind of bad JWT gets 401 where a good one with the same claims gets 200."""
    stack = await callers_stack(_callers(), issuer=issuer, kubernetes=False)
    assert await _status(http, stack.url, "team-00", issuer.sign(namespace="team-00")) == 200
    assert await _status(http, stack.url, "team-00", token_of(issuer)) == 401, case


async def test_a_rotated_key_is_fetched_once_on_its_first_token(
    callers_stack: CallersStack, issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """A token with a newly published kid triggers one JWKS refetch, then is accepted."""
    stack = await callers_stack(_callers(), issuer=issuer, kubernetes=False)
    assert await _status(http, stack.url, "team-00", issuer.sign(namespace="team-00")) == 200
    fetched = issuer.jwks_fetches
    issuer.published.add("rsa-2")
    rotated = issuer.sign(namespace="team-00", kid="rsa-2")
    assert await _status(http, stack.url, "team-00", rotated) == 200
    assert await _status(http, stack.url, "team-00", rotated) == 200
    assert issuer.jwks_fetches == fetched + 1


async def test_unknown_kids_do_not_hammer_the_issuer(
    callers_stack: CallersStack, issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """Within jwks_refetch_seconds, tokens with made-up kids cause no further fetches."""
    stack = await callers_stack(_callers(jwks_refetch_seconds=60), issuer=issuer, kubernetes=False)
    assert await _status(http, stack.url, "team-00", issuer.sign(namespace="team-00")) == 200
    fetched = issuer.jwks_fetches
    for n in range(5):
        token = issuer.sign(namespace="team-00", kid=f"made-up-{n}", key=issuer.keys["rsa-1"])
        assert await _status(http, stack.url, "team-00", token) == 401
    assert issuer.jwks_fetches == fetched


async def test_an_unreachable_issuer_is_an_upstream_error_not_a_refusal(
    callers_stack: CallersStack, issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """With no keys ever fetched, a token cannot be judged: 502, not 401."""
    issuer.failing = True
    stack = await callers_stack(_callers(), issuer=issuer, kubernetes=False)
    assert await _status(http, stack.url, "team-00", issuer.sign(namespace="team-00")) == 502


async def test_a_configured_jwks_uri_skips_discovery(
    callers_stack: CallersStack, issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """With jwks_uri set, the keys come from there and discovery is not needed."""
    stack = await callers_stack(
        _callers(jwks_uri=f"{issuer.url}/jwks"), issuer=issuer, kubernetes=False
    )
    assert await _status(http, stack.url, "team-03", issuer.sign(namespace="team-03")) == 200


async def test_concurrent_first_tokens_share_one_key_fetch(
    issuer: JwtIssuer, http: aiohttp.ClientSession
) -> None:
    """Twenty verifications before any key is held wait for one fetch, and all succeed."""
    settings = JwtIssuerSettings(issuer=issuer.url, audiences=("lakegate",))
    keys = IssuerKeys(settings, http)
    found = await asyncio.gather(*(keys.keys_for("rsa-1", "RS256") for _ in range(20)))
    assert all(len(k) == 1 for k in found)
    assert issuer.jwks_fetches == 1
