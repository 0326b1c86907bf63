"""Minting ServiceAccount tokens with TokenRequest against the fake Kubernetes API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import KubeClient, KubeForbidden, KubeInvalid, KubeNotFound
from tests.fixtures.kube_api import GATEWAY_USER, TENANT_A


def verify(kube_api: KubeApiServer, token: str, audience: str) -> dict[str, Any]:
    """Check a token's signature against the fake's JWKS, as a federation partner would."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(kube_api.jwks())[kid]
    return jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=kube_api.issuer
    )


async def test_minted_token_carries_the_service_account(
    kube: KubeClient, kube_api: KubeApiServer
) -> None:
    """A minted token is signed by the cluster's key, names the ServiceAccount, and lives an
    hour unless asked otherwise (TokenRequest's usual, and Flyte's)."""
    minted = await kube.mint_token(TENANT_A, "billing-api", audiences=["databricks"])
    claims = verify(kube_api, minted.value, "databricks")
    assert claims["sub"] == "system:serviceaccount:tenant-a:billing-api"
    assert claims["aud"] == ["databricks"]
    assert claims["kubernetes.io"]["namespace"] == TENANT_A
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "billing-api"
    assert claims["exp"] - claims["iat"] == 3600
    assert minted.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert minted.audiences == ("databricks",)
    assert kube_api.token_requests(TENANT_A, "billing-api") == 1


async def test_another_expiry_is_honoured(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """The requested lifetime is what the token gets."""
    minted = await kube.mint_token(
        TENANT_A, "billing-api", audiences=["databricks"], expiration_seconds=1200
    )
    claims = verify(kube_api, minted.value, "databricks")
    assert claims["exp"] - claims["iat"] == 1200


async def test_missing_service_account_is_not_found(kube: KubeClient) -> None:
    """Minting for a ServiceAccount that does not exist raises KubeNotFound."""
    with pytest.raises(KubeNotFound, match="serviceaccount tenant-a/ghost"):
        await kube.mint_token(TENANT_A, "ghost", audiences=["databricks"])


async def test_forbidden_token_request_quotes_rbac(
    kube: KubeClient, kube_api: KubeApiServer
) -> None:
    """Without 'create serviceaccounts/token' the error says RBAC forbids it, in its words."""
    kube_api.deny("create", "serviceaccounts/token", namespace=TENANT_A)
    with pytest.raises(KubeForbidden) as info:
        await kube.mint_token(TENANT_A, "billing-api", audiences=["databricks"])
    assert "RBAC forbids lakegate to create a token for serviceaccount" in info.value.message
    assert f'User "{GATEWAY_USER}" cannot create resource "serviceaccounts/token"' in (
        info.value.message
    )


async def test_too_short_expiry_is_invalid(kube: KubeClient) -> None:
    """An expiry below ten minutes is refused by the API server as invalid (422)."""
    with pytest.raises(KubeInvalid) as info:
        await kube.mint_token(TENANT_A, "billing-api", audiences=["d"], expiration_seconds=60)
    assert info.value.http_status == 422
    assert "less than 10 minutes" in info.value.message


async def test_audiences_are_required(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """A token without an audience would be one for the API server itself: refused locally."""
    with pytest.raises(ValueError, match="audience"):
        await kube.mint_token(TENANT_A, "billing-api", audiences=[])
    assert kube_api.token_requests(TENANT_A, "billing-api") == 0
