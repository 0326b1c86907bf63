"""Checking callers' tokens with TokenReview against the fake Kubernetes API."""

from __future__ import annotations

import pytest

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import KubeClient, KubeForbidden
from tests.fixtures.kube_api import TENANT_B

AUDIENCE = "lakegate"


async def test_review_names_the_service_account(kube: KubeClient) -> None:
    """A valid ServiceAccount token authenticates as its namespace and ServiceAccount."""
    minted = await kube.mint_token(TENANT_B, "etl", audiences=[AUDIENCE])
    result = await kube.review(minted.value, [AUDIENCE])
    assert result.authenticated
    assert (result.namespace, result.service_account) == (TENANT_B, "etl")
    assert result.username == "system:serviceaccount:tenant-b:etl"
    assert "system:serviceaccounts:tenant-b" in result.groups
    assert result.audiences == (AUDIENCE,)
    assert result.error is None


async def test_token_for_another_audience_is_refused(kube: KubeClient) -> None:
    """A token minted for another service does not authenticate here."""
    minted = await kube.mint_token(TENANT_B, "etl", audiences=["billing-api"])
    result = await kube.review(minted.value, [AUDIENCE])
    assert not result.authenticated
    assert result.namespace is None
    assert result.error


async def test_expired_token_is_refused(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """Past its expiry plus the API server's 60 s leeway, a token no longer authenticates."""
    minted = await kube.mint_token(TENANT_B, "etl", audiences=[AUDIENCE], expiration_seconds=600)
    kube_api.advance(600 + 60 + 1)
    result = await kube.review(minted.value, [AUDIENCE])
    assert not result.authenticated
    assert result.error is not None
    assert "expired" in result.error


async def test_token_of_a_deleted_service_account_is_refused(
    kube: KubeClient, kube_api: KubeApiServer
) -> None:
    """Deleting the ServiceAccount revokes its tokens, though their signature is still good."""
    minted = await kube.mint_token(TENANT_B, "etl", audiences=[AUDIENCE])
    kube_api.delete_service_account(TENANT_B, "etl")
    result = await kube.review(minted.value, [AUDIENCE])
    assert not result.authenticated


async def test_garbage_token_is_refused_without_error(kube: KubeClient) -> None:
    """A token that is not a JWT is an unauthenticated answer, not an exception."""
    result = await kube.review("definitely-not-a-jwt", [AUDIENCE])
    assert not result.authenticated


async def test_empty_token_is_refused_without_asking(
    kube: KubeClient, kube_api: KubeApiServer
) -> None:
    """An empty bearer token is refused locally."""
    result = await kube.review("  ", [AUDIENCE])
    assert not result.authenticated
    assert kube_api.token_reviews == 0


async def test_forbidden_review_is_an_error(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """Without 'create tokenreviews' lakegate cannot judge callers: that is an error, not a no."""
    minted = await kube.mint_token(TENANT_B, "etl", audiences=[AUDIENCE])
    kube_api.deny("create", "tokenreviews")
    with pytest.raises(KubeForbidden, match="tokenreviews"):
        await kube.review(minted.value, [AUDIENCE])
