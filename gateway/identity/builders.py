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
from gateway.errors import CredentialUnavailable
from gateway.identity import kinds
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
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
    ) -> CachedCredential:
        kind = kinds.of(plan)
        owner = SHARED_NAMESPACE if plan.shared else namespace
        return CachedCredential(
            self.cache,
            CacheKey(owner, kind.key(plan), plan.workspace.host),
            kind.fetch(plan, namespace, self),
            kind=plan.kind,
            namespace=namespace,
            on_invalidate=on_invalidate,
        )

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return await self._kube_or_fail(namespace).read_secret(namespace, name)

    async def mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken:
        minted = await self._kube_or_fail(namespace).mint_token(
            namespace, service_account, audiences=audiences, expiration_seconds=seconds
        )
        expires_at = minted.expires_at
        timestamp = getattr(expires_at, "timestamp", None)
        return AccessToken(minted.value, timestamp() if callable(timestamp) else None)

    async def aclose(self) -> None:
        """Cancel a token endpoint discovery in flight."""
        await self.tokens.aclose()

    def _kube_or_fail(self, namespace: str) -> Kube:
        if self.kube is None:
            raise CredentialUnavailable(
                f"namespace '{namespace}': this identity needs the Kubernetes API, which is "
                "off (set kubernetes.mode)",
                namespace=namespace,
            )
        return self.kube
