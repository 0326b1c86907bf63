"""Azure Databricks identities from Entra ID: fetch functions for the token cache (reference §5).

Both grants are client credentials at ``{authority}{tenant}/oauth2/v2.0/token`` for the Azure
Databricks resource, with the client authenticated in the form body (Entra does not take
HTTP Basic): by a client secret, or by a federated JWT (workload identity: the projected token
file AKS mounts, re-read at each fetch because the kubelet rotates it). Entra answers in the
OAuth dialect the workspace token endpoint speaks, so both go through ``oauth.request_token``:
``{"error", "error_description"}`` becomes a ``TokenEndpointError``, and an ``expires_in``
given as a numeric string (v1 endpoints) is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable
from gateway.identity.cache import Fetch
from gateway.identity.sources import SubjectToken

# The public cloud's; US Government is https://login.microsoftonline.us/ and China
# https://login.chinacloudapi.cn/. AKS workload identity injects AZURE_AUTHORITY_HOST.
AZURE_AUTHORITY = "https://login.microsoftonline.com/"
# The Azure Databricks application id, the same in every Azure cloud.
AZURE_DATABRICKS_RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_DATABRICKS_SCOPE = f"{AZURE_DATABRICKS_RESOURCE}/.default"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Clock = Callable[[], float]


def entra_token_endpoint(authority: str, tenant_id: str) -> str:
    """The v2.0 token endpoint of a tenant; the tenant is quoted so it stays one path segment."""
    return f"{authority.rstrip('/')}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"


def azure_client_secret(
    session: aiohttp.ClientSession,
    authority: str,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    namespace: str = "",
    source: str = "azure-client-secret",
    scope: str = AZURE_DATABRICKS_SCOPE,
    retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
    request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    clock: Clock = time.time,
) -> Fetch:
    """An Entra ID application's client secret, traded for Azure Databricks tokens."""
    _require(namespace, source, tenant_id=tenant_id, client_id=client_id, secret=client_secret)

    async def credentials() -> dict[str, str]:
        return {"client_secret": client_secret}

    return _entra_fetch(
        session,
        entra_token_endpoint(authority, tenant_id),
        client_id,
        credentials,
        scope=scope,
        namespace=namespace,
        source=source,
        retry=retry,
        request_timeout=request_timeout,
        clock=clock,
    )


def azure_workload_identity(
    session: aiohttp.ClientSession,
    authority: str,
    tenant_id: str,
    client_id: str,
    assertion: SubjectToken,
    *,
    namespace: str = "",
    source: str = "azure-workload-identity",
    scope: str = AZURE_DATABRICKS_SCOPE,
    retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
    request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    clock: Clock = time.time,
) -> Fetch:
    """An Entra ID application that trusts a federated JWT: ``assertion`` yields the JWT on
    every fetch (``sources.token_file(path)`` for AKS's projected token, or a minted one)."""
    _require(namespace, source, tenant_id=tenant_id, client_id=client_id)

    async def credentials() -> dict[str, str]:
        # Re-read at every fetch: the kubelet rotates the projected token.
        return {
            "client_assertion_type": JWT_BEARER_ASSERTION,
            "client_assertion": await assertion(),
        }

    return _entra_fetch(
        session,
        entra_token_endpoint(authority, tenant_id),
        client_id,
        credentials,
        scope=scope,
        namespace=namespace,
        source=source,
        retry=retry,
        request_timeout=request_timeout,
        clock=clock,
    )


def _entra_fetch(
    session: aiohttp.ClientSession,
    endpoint: str,
    client_id: str,
    credentials: Callable[[], Awaitable[dict[str, str]]],
    *,
    scope: str,
    namespace: str,
    source: str,
    retry: RetryPolicy,
    request_timeout: aiohttp.ClientTimeout,
    clock: Clock,
) -> Fetch:
    """A client-credentials grant at Entra; ``credentials`` gives how the client proves itself."""

    async def fetch() -> AccessToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            **(await credentials()),
            "scope": scope,
        }
        return await oauth.request_token(
            session,
            endpoint,
            form,
            authorization=None,
            namespace=namespace,
            source=source,
            retry=retry,
            request_timeout=request_timeout,
            clock=clock,
        )

    return fetch


def _require(namespace: str, source: str, **values: str) -> None:
    missing = [name.replace("_", " ") for name, value in values.items() if not value.strip()]
    if missing:
        raise CredentialUnavailable(
            f"Entra ID needs a {', '.join(missing)}", namespace=namespace, source=source
        )
