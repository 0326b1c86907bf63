"""From a ``Plan`` to a credential: the fetch of its kind, behind the token cache.

The builder lends each kind's fetch its ``Tools``: the token endpoints (one ``TokenClient``
for every credential, so a workspace's endpoint is discovered once), the token cache, the
identity options, and the Kubernetes calls. Secret values held in Kubernetes are read by the
fetch itself, so a rotated Secret is used from the next fetch on; the cache refetches after a
refusal (compare-and-invalidate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import aiohttp

from gateway.databricks.auth import AccessToken
from gateway.databricks.oauth import TokenClient
from gateway.errors import (
    CredentialUnavailable,
    IdentityForbidden,
    IdentityMisconfigured,
    KubernetesError,
)
from gateway.identity import azure_management, entra_resources, kinds
from gateway.identity.cache import CachedCredential, CacheKey, Fetch, TokenCache
from gateway.identity.entra_resources import EntraCredential
from gateway.identity.strategy import Plan
from gateway.settings import IdentityOptions

# The default identity is one for all namespaces: one cache entry, not one per namespace.
SHARED_NAMESPACE = ""


class Minted(Protocol):
    @property
    def value(self) -> str: ...
    @property
    def expires_at(self) -> object: ...


class Kube(Protocol):
    """The Kubernetes calls credentials need (``gateway.kube.KubeClient`` has them)."""

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]: ...

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = ...,
    ) -> Minted: ...


class Builder:
    """Builds every namespace's credentials; it is the ``Tools`` their fetches use."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        cache: TokenCache,
        options: IdentityOptions,
        kube: Kube | None,
        *,
        tokens: TokenClient | None = None,
    ) -> None:
        self.tokens = tokens if tokens is not None else TokenClient(session)
        self.cache = cache
        self.options = options
        self.kube = kube

    def credential(
        self, plan: Plan, namespace: str, on_invalidate: Callable[[], None]
    ) -> CachedCredential | SecretHeldToken:
        kind = kinds.of(plan)
        owner = SHARED_NAMESPACE if plan.shared else namespace
        key = CacheKey(owner, kind.key(plan), plan.workspace.host)
        if plan.kind == kinds.Pat.name and plan.secret_name is not None:
            # The token IS the Secret's value: read it at every use, so an edited Secret
            # (repaired, rotated) counts from the next call and a bad value never sticks.
            return SecretHeldToken(key, kind.fetch(plan, namespace, self), on_invalidate)
        scoped = entra_resources.scoped_fetch(plan, namespace, self)
        if scoped is not None:
            # An Entra principal also asks Entra for other resources (Azure DevOps: gitcreds).
            return EntraCredential(
                self.cache,
                key,
                kind.fetch(plan, namespace, self),
                scoped=scoped,
                kind=plan.kind,
                namespace=namespace,
                on_invalidate=on_invalidate,
                management=azure_management.management_fetch(plan, namespace, self),
            )
        return CachedCredential(
            self.cache,
            key,
            kind.fetch(plan, namespace, self),
            kind=plan.kind,
            namespace=namespace,
            on_invalidate=on_invalidate,
            management=azure_management.management_fetch(plan, namespace, self),
        )

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return await self._kube_or_fail(namespace).read_secret(namespace, name)

    async def mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken:
        try:
            minted = await self._kube_or_fail(namespace).mint_token(
                namespace, service_account, audiences=audiences, expiration_seconds=seconds
            )
        except KubernetesError as exc:
            if exc.http_status not in (403, 404):
                raise
            refusal = IdentityForbidden if exc.http_status == 403 else IdentityMisconfigured
            why = "forbidden to lakegate (RBAC)" if exc.http_status == 403 else "refused (404)"
            raise refusal(
                f"namespace '{namespace}': TokenRequest for ServiceAccount '{service_account}' "
                f"{why}: {exc.message}",
                namespace=namespace,
                source=f"ServiceAccount '{service_account}'",
            ) from exc
        expires_at = minted.expires_at
        timestamp = getattr(expires_at, "timestamp", None)
        return AccessToken(minted.value, timestamp() if callable(timestamp) else None)

    async def aclose(self) -> None:
        """Cancel a token endpoint discovery in flight."""
        await self.tokens.aclose()

    def _kube_or_fail(self, namespace: str) -> Kube:
        if self.kube is None:
            raise IdentityMisconfigured(
                f"namespace '{namespace}': this identity needs the Kubernetes API, which is "
                "off (set kubernetes.mode)",
                namespace=namespace,
            )
        return self.kube


class SecretHeldToken:
    """A ``TokenProvider`` whose token is a Secret's value, read afresh for every call."""

    kind = "pat"

    def __init__(self, key: CacheKey, fetch: Fetch, on_invalidate: Callable[[], None]) -> None:
        self.key = key
        self._fetch = fetch
        self.namespace = key.namespace
        self._on_invalidate = on_invalidate
        self._last: str | None = None

    @property
    def auth_type(self) -> str:
        return self.kind

    async def token(self) -> str:
        try:
            self._last = (await self._fetch()).value
        except CredentialUnavailable:
            # The Secret is gone or bad: the next use resolves the namespace afresh.
            self._on_invalidate()
            raise
        return self._last

    def invalidate(self, token: str) -> None:
        # Nothing is kept; the resolution is dropped, as a cached one would be, only when the
        # refused token is the Secret's latest value (a late 401 for an old one changes nothing).
        if token == self._last:
            self._on_invalidate()

    def __repr__(self) -> str:
        return f"SecretHeldToken(namespace={self.namespace!r})"
