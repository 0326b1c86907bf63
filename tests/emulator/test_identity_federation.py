"""Token exchange (RFC 8693) against federation policies, with a real JWKS issuer on loopback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from tests.emulator.test_identity import (
    SP_ID,
    SP_SECRET,
    MakeWorkspace,
    Workspace,
    basic_auth,
    make_workspace,
    serve,
)
from tests.support.jwt_issuer import PrivateKey, ec_key, oidc_app, public_jwk, shared_rsa_key, sign

__all__ = ["make_workspace"]  # the fixture, re-exported so pytest finds it here

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
AUDIENCE = "lakegate-dbx"
SUBJECT = "system:serviceaccount:team-a:lakegate"


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    """Two RSA keys, made once per run: generating them is the slowest thing here."""
    return [shared_rsa_key(0), shared_rsa_key(1)]


@dataclass
class Issuer:
    """An OIDC issuer: discovery document and JWKS over plain http, like a private K8s one."""

    keys: dict[str, PrivateKey]
    url: URL = field(default_factory=URL)
    hits: Counter[str] = field(default_factory=Counter)

    @property
    def iss(self) -> str:
        return str(self.url).rstrip("/")

    def jwks(self) -> dict[str, Any]:
        # No "alg" in the entries: the emulator must pick the algorithm from the key type.
        return {"keys": [public_jwk(k, kid, with_alg=False) for kid, k in self.keys.items()]}

    def sign(self, *, kid: str = "rsa-1", key: PrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.iss, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 3600}
        body.update(claims)
        return sign(body, key or self.keys[kid], kid)

    def app(self) -> web.Application:
        def discovery() -> dict[str, Any]:
            self.hits["discovery"] += 1
            return {"issuer": self.iss, "jwks_uri": f"{self.iss}/keys"}

        def keys() -> dict[str, Any]:
            self.hits["keys"] += 1
            return self.jwks()

        return oidc_app(discovery, keys, jwks_path="/keys")


@pytest.fixture
async def issuer(rsa_keys: list[rsa.RSAPrivateKey]) -> AsyncIterator[Issuer]:
    issuer = Issuer({"rsa-1": rsa_keys[0], "ec-1": ec_key()})
    async with serve(issuer.app()) as url:
        issuer.url = url
        yield issuer


def sp_config(**policy: Any) -> dict[str, Any]:
    return {
        "users": [{"name": "alice@example.com"}],
        "service_principals": [
            {
                "name": "team-a-sp",
                "application_id": SP_ID,
                "secrets": [SP_SECRET],
                "federation_policies": [{"audiences": [AUDIENCE], "subject": SUBJECT, **policy}],
            }
        ],
    }


async def exchange(
    ws: Workspace, subject_token: str, client_id: str | None = SP_ID, **extra: str
) -> aiohttp.ClientResponse:
    form = {"grant_type": GRANT, "subject_token": subject_token, "subject_token_type": JWT_TYPE}
    form["scope"] = "all-apis"
    if client_id is not None:
        form["client_id"] = client_id
    return await ws.token(**{**form, **extra})


async def refusal(resp: aiohttp.ClientResponse) -> tuple[int, str, str]:
    body = await resp.json()
    return resp.status, body["error"], body["error_description"]


@pytest.fixture
async def discovered(make_workspace: MakeWorkspace, issuer: Issuer) -> Workspace:
    """A workspace whose SP policy finds the issuer's keys by discovery."""
    return await make_workspace(sp_config(issuer=issuer.iss))


# -- accepted exchanges -----------------------------------------------------------------


async def test_exchange_with_policy_jwks_json(
    make_workspace: MakeWorkspace, issuer: Issuer
) -> None:
    """A JWT verified by the policy's inline jwks_json yields a token for the SP."""
    ws = await make_workspace(sp_config(issuer=issuer.iss, jwks_json=issuer.jwks()))
    resp = await exchange(ws, issuer.sign())
    body = await resp.json()
    assert resp.status == 200, body
    assert body["token_type"] == "Bearer"
    who = await ws.whoami(body["access_token"])
    assert (await who.json())["app"] == SP_ID
    assert issuer.hits.total() == 0


async def test_exchange_with_policy_jwks_uri(make_workspace: MakeWorkspace, issuer: Issuer) -> None:
    """A policy's jwks_uri is fetched over http, without discovery."""
    ws = await make_workspace(sp_config(issuer=issuer.iss, jwks_uri=f"{issuer.iss}/keys"))
    assert (await exchange(ws, issuer.sign())).status == 200
    assert issuer.hits == Counter({"keys": 1})


async def test_exchange_discovers_the_issuer_keys(discovered: Workspace, issuer: Issuer) -> None:
    """Without jwks_uri or jwks_json the keys come from the issuer's discovery document."""
    assert (await exchange(discovered, issuer.sign())).status == 200
    assert issuer.hits == Counter({"discovery": 1, "keys": 1})


async def test_exchange_accepts_es256(discovered: Workspace, issuer: Issuer) -> None:
    """An ES256-signed JWT is accepted like an RS256 one."""
    assert (await exchange(discovered, issuer.sign(kid="ec-1"))).status == 200


async def test_keys_are_cached_between_exchanges(discovered: Workspace, issuer: Issuer) -> None:
    """A second exchange reuses the fetched JWKS."""
    for _ in range(3):
        assert (await exchange(discovered, issuer.sign())).status == 200
    assert issuer.hits == Counter({"discovery": 1, "keys": 1})


async def test_concurrent_exchanges_fetch_the_keys_once(
    discovered: Workspace, issuer: Issuer
) -> None:
    """A burst of exchanges against a cold cache sends one discovery and one JWKS request."""
    answers = await asyncio.gather(*(exchange(discovered, issuer.sign()) for _ in range(5)))
    assert [a.status for a in answers] == [200] * 5
    assert issuer.hits == Counter({"discovery": 1, "keys": 1})


async def test_unknown_kid_refetches_the_keys(
    discovered: Workspace, issuer: Issuer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    """A JWT signed with a key added after the cache filled forces one refetch."""
    assert (await exchange(discovered, issuer.sign())).status == 200
    issuer.keys["rsa-2"] = rsa_keys[1]
    assert (await exchange(discovered, issuer.sign(kid="rsa-2"))).status == 200
    assert issuer.hits["keys"] == 2


async def test_audience_array_needs_one_match(discovered: Workspace, issuer: Issuer) -> None:
    """An aud array is accepted when any one entry is a policy audience."""
    token = issuer.sign(aud=["https://kubernetes.default.svc", AUDIENCE])
    assert (await exchange(discovered, token)).status == 200


async def test_issued_token_expiry_is_capped_by_the_jwt(
    discovered: Workspace, issuer: Issuer
) -> None:
    """The access token lives no longer than the JWT it was exchanged for."""
    resp = await exchange(discovered, issuer.sign(exp=int(time.time()) + 600))
    body = await resp.json()
    assert 598 <= body["expires_in"] <= 600
    discovered.clock.advance(601)
    assert (await discovered.whoami(body["access_token"])).status == 403


async def test_account_policy_maps_the_subject_to_a_user(
    make_workspace: MakeWorkspace, issuer: Issuer
) -> None:
    """Without client_id an account-wide policy maps the subject claim to a user by e-mail."""
    config = {
        **sp_config(issuer=issuer.iss),
        "federation_policies": [
            {"issuer": issuer.iss, "audiences": [AUDIENCE], "subject_claim": "email"}
        ],
    }
    ws = await make_workspace(config)
    resp = await exchange(ws, issuer.sign(email="alice@example.com"), client_id=None)
    token = (await resp.json())["access_token"]
    assert (await (await ws.whoami(token)).json())["name"] == "alice@example.com"


async def test_account_policy_maps_an_application_id_to_its_sp(
    make_workspace: MakeWorkspace, issuer: Issuer
) -> None:
    """An account-wide policy's subject may be a service principal's application id."""
    config = {**sp_config(issuer=issuer.iss), "federation_policies": [{"issuer": issuer.iss}]}
    ws = await make_workspace(config, account_id="acct-1")
    resp = await exchange(ws, issuer.sign(sub=SP_ID, aud="acct-1"), client_id=None)
    token = (await resp.json())["access_token"]
    assert (await (await ws.whoami(token)).json())["app"] == SP_ID


# -- refused exchanges ------------------------------------------------------------------


async def test_wrong_audience_is_invalid_grant(discovered: Workspace, issuer: Issuer) -> None:
    """A JWT for another audience is refused, and the answer says it was the audience."""
    status, error, why = await refusal(await exchange(discovered, issuer.sign(aud="other")))
    assert (status, error) == (400, "invalid_grant")
    assert "audience" in why


async def test_default_audience_is_the_account_id(
    make_workspace: MakeWorkspace, issuer: Issuer
) -> None:
    """A policy without audiences accepts only the account id."""
    config = sp_config(issuer=issuer.iss)
    del config["service_principals"][0]["federation_policies"][0]["audiences"]
    ws = await make_workspace(config, account_id="acct-1")
    assert (await exchange(ws, issuer.sign())).status == 400
    assert (await exchange(ws, issuer.sign(aud="acct-1"))).status == 200


async def test_wrong_issuer_is_invalid_grant(discovered: Workspace, issuer: Issuer) -> None:
    """A JWT from an issuer no policy trusts is refused without fetching anything."""
    token = issuer.sign(iss="https://evil.example")
    status, error, why = await refusal(await exchange(discovered, token))
    assert (status, error) == (400, "invalid_grant")
    assert "issuer https://evil.example" in why
    assert issuer.hits.total() == 0


async def test_wrong_subject_is_invalid_grant(discovered: Workspace, issuer: Issuer) -> None:
    """A JWT for another ServiceAccount does not satisfy the SP's policy."""
    token = issuer.sign(sub="system:serviceaccount:team-b:lakegate")
    status, error, why = await refusal(await exchange(discovered, token))
    assert (status, error) == (400, "invalid_grant")
    assert "team-b" in why
    assert "subject claim sub" in why


async def test_expired_jwt_is_invalid_grant(discovered: Workspace, issuer: Issuer) -> None:
    """A JWT past its exp (beyond the leeway) is refused."""
    token = issuer.sign(exp=int(time.time()) + 60)
    discovered.clock.advance(120)
    status, error, why = await refusal(await exchange(discovered, token))
    assert (status, error, why) == (400, "invalid_grant", "subject_token has expired")


async def test_future_nbf_is_invalid_grant(discovered: Workspace, issuer: Issuer) -> None:
    """A JWT that is not valid yet is refused."""
    token = issuer.sign(nbf=int(time.time()) + 600)
    assert "nbf" in (await refusal(await exchange(discovered, token)))[2]


async def test_signature_by_another_key_is_invalid_grant(
    discovered: Workspace, issuer: Issuer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    """A JWT signed by a key the issuer does not publish, under a known kid, is refused."""
    token = issuer.sign(key=rsa_keys[1])
    status, error, why = await refusal(await exchange(discovered, token))
    assert (status, error) == (400, "invalid_grant")
    assert "signature" in why


async def test_unknown_client_id_is_invalid_client(discovered: Workspace, issuer: Issuer) -> None:
    """Token exchange naming an unknown service principal is 401 invalid_client."""
    status, error, _ = await refusal(await exchange(discovered, issuer.sign(), client_id="nope"))
    assert (status, error) == (401, "invalid_client")


async def test_wrong_basic_secret_on_exchange_is_invalid_client(
    discovered: Workspace, issuer: Issuer
) -> None:
    """Client credentials sent along with an exchange must be right."""
    form = {"grant_type": GRANT, "subject_token": issuer.sign(), "subject_token_type": JWT_TYPE}
    resp = await discovered.http.post(
        discovered.url.with_path("/oidc/v1/token"),
        data=form,
        headers=basic_auth(SP_ID, "dose-wrong"),
    )
    assert resp.status == 401


async def test_exchange_without_account_policy_is_invalid_grant(
    discovered: Workspace, issuer: Issuer
) -> None:
    """Without client_id and without account-wide policies there is nothing to match."""
    status, error, _ = await refusal(await exchange(discovered, issuer.sign(), client_id=None))
    assert (status, error) == (400, "invalid_grant")


async def test_hs256_jwt_is_invalid_request(discovered: Workspace, issuer: Issuer) -> None:
    """Only RS256 and ES256 subject tokens are accepted."""
    token = jwt.encode({"iss": issuer.iss}, "k" * 32, algorithm="HS256")
    status, error, _ = await refusal(await exchange(discovered, token))
    assert (status, error) == (400, "invalid_request")


async def test_malformed_subject_token_is_invalid_request(discovered: Workspace) -> None:
    """A subject_token that is no JWT is refused without being echoed."""
    resp = await exchange(discovered, "not-a-jwt-at-all")
    assert (await refusal(resp))[:2] == (400, "invalid_request")
    assert "not-a-jwt-at-all" not in await resp.text()


async def test_wrong_subject_token_type_is_invalid_request(
    discovered: Workspace, issuer: Issuer
) -> None:
    """subject_token_type must say jwt."""
    token = issuer.sign()
    resp = await exchange(discovered, token, subject_token_type="urn:x:access_token")
    assert (await refusal(resp))[:2] == (400, "invalid_request")


async def test_unreachable_issuer_is_invalid_grant(make_workspace: MakeWorkspace) -> None:
    """An issuer whose keys cannot be fetched makes the exchange fail cleanly."""
    dead = Issuer({"rsa-1": ec_key()}, url=URL("http://127.0.0.1:9"))
    ws = await make_workspace(sp_config(issuer=dead.iss))
    status, error, why = await refusal(await exchange(ws, dead.sign()))
    assert (status, error) == (400, "invalid_grant")
    assert "could not fetch" in why


async def test_invalid_grant_status_is_configurable(
    make_workspace: MakeWorkspace, issuer: Issuer
) -> None:
    """invalid_grant_status: 401 moves policy mismatches to 401."""
    ws = await make_workspace(sp_config(issuer=issuer.iss), invalid_grant_status=401)
    assert (await exchange(ws, issuer.sign(aud="other"))).status == 401


async def test_stats_count_exchanges_by_principal(discovered: Workspace, issuer: Issuer) -> None:
    """Token exchanges are counted under their grant type and the SP."""
    await exchange(discovered, issuer.sign())
    await exchange(discovered, issuer.sign(aud="other"))
    stats = discovered.service.stats()
    assert stats["token_requests"]["by_grant_type"] == {"token_exchange": 2}
    assert stats["token_requests"]["by_principal"] == {"team-a-sp": 2}
    assert stats["tokens_issued"]["total"] == 1
    assert stats["token_requests"]["errors"] == {"invalid_grant": 1}
