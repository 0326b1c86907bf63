"""From a ``Plan`` to a credential: the fetch function of its kind, behind the token cache.

Secret values held in Kubernetes are read by the fetch itself, so a rotated Secret is used
from the next fetch on; the cache refetches after a refusal (compare-and-invalidate).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from gateway.databricks.auth import AccessToken
from gateway.errors import CredentialUnavailable
from gateway.identity import sources, sources_azure
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.identity.plans import Plan
from gateway.settings import IdentityOptions

Fetch = Callable[[], Awaitable[AccessToken]]
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


@dataclass(frozen=True, slots=True)
class Builder:
    session: aiohttp.ClientSession
    cache: TokenCache
    options: IdentityOptions
    kube: Kube | None
    # Every resolution builds new credentials; sharing the workspace's token endpoint spares
    # each of them (and so every cold namespace, and every refresh after a re-resolution) the
    # discovery GET that otherwise precedes its first token request.
    endpoints: dict[str, sources.TokenEndpoint] = field(default_factory=dict, compare=False)

    def _endpoint(self, host: str) -> sources.TokenEndpoint:
        found = self.endpoints.get(host)
        if found is None:
            found = self.endpoints[host] = sources.TokenEndpoint(self.session, host)
        return found

    def credential(
        self, plan: Plan, namespace: str, on_invalidate: Callable[[], None]
    ) -> CachedCredential:
        owner = SHARED_NAMESPACE if plan.shared else namespace
        key = CacheKey(owner, plan.key, plan.workspace.host)
        return CachedCredential(
            self.cache,
            key,
            self._fetch(plan, namespace),
            kind=plan.kind,
            namespace=namespace,
            on_invalidate=on_invalidate,
        )

    def _fetch(self, plan: Plan, namespace: str) -> Fetch:
        host = plan.workspace.host
        source = f"{plan.kind} ({plan.origin})"
        if plan.kind == "pat":
            if plan.secret_name:
                return sources.pat_from_secret(self._read, namespace, plan.secret_name)
            return sources.pat(self._inline(plan, namespace), namespace=namespace, source=source)
        if plan.kind == "oauth-m2m":
            return self._oauth(plan, namespace, host, source)
        if plan.kind == "service-account-federation":
            assert plan.service_account is not None
            assert plan.audience is not None
            subject = sources.minted_service_account_token(
                self.cache,
                self._mint,
                namespace,
                plan.service_account,
                plan.audience,
                self.options.service_account_token_seconds,
            )
            return sources.federated(
                self.session,
                host,
                subject,
                client_id=plan.client_id,
                namespace=namespace,
                source=source,
                endpoint=self._endpoint(host),
            )
        if plan.kind == "pod-token-federation":
            assert plan.token_file is not None
            return sources.federated(
                self.session,
                host,
                sources.token_file(plan.token_file, namespace=namespace),
                client_id=plan.client_id,
                namespace=namespace,
                source=source,
                endpoint=self._endpoint(host),
            )
        if plan.kind == "azure-client-secret":
            return self._azure_secret(plan, namespace, source)
        if plan.kind == "azure-workload-identity":
            assert plan.token_file
            assert plan.tenant_id
            assert plan.client_id
            return sources_azure.azure_workload_identity(
                self.session,
                self.options.azure_authority,
                plan.tenant_id,
                plan.client_id,
                sources.token_file(plan.token_file, namespace=namespace),
                namespace=namespace,
                source=source,
            )
        raise TypeError(plan.kind)  # pragma: no cover - Kind is closed

    def _oauth(self, plan: Plan, namespace: str, host: str, source: str) -> Fetch:
        if plan.secret_name and plan.client_id is None:
            return sources.oauth_m2m_from_secret(
                self.session,
                host,
                self._read,
                namespace,
                plan.secret_name,
                endpoint=self._endpoint(host),
            )
        client_id = plan.client_id or ""
        return self._with_client_secret(
            plan,
            namespace,
            lambda secret: sources.oauth_m2m(
                self.session,
                host,
                client_id,
                secret,
                namespace=namespace,
                source=source,
                endpoint=self._endpoint(host),
            ),
        )

    def _azure_secret(self, plan: Plan, namespace: str, source: str) -> Fetch:
        assert plan.tenant_id
        assert plan.client_id
        tenant_id, client_id = plan.tenant_id, plan.client_id
        return self._with_client_secret(
            plan,
            namespace,
            lambda secret: sources_azure.azure_client_secret(
                self.session,
                self.options.azure_authority,
                tenant_id,
                client_id,
                secret,
                namespace=namespace,
                source=source,
            ),
        )

    def _with_client_secret(
        self, plan: Plan, namespace: str, make: Callable[[str], Fetch]
    ) -> Fetch:
        """The fetch ``make`` builds from the client secret: inline, or read from the
        Secret at every fetch so that a rotated one is used (the policy names the client id)."""
        if plan.secret_name is None:
            return make(self._inline(plan, namespace))
        secret_name = plan.secret_name

        async def fetch() -> AccessToken:
            (secret,) = await sources.secret_values(
                self._read, namespace, secret_name, ("client_secret",)
            )
            return await make(secret)()

        return fetch

    def _inline(self, plan: Plan, namespace: str) -> str:
        if plan.inline_secret is None:
            raise CredentialUnavailable(
                f"namespace '{namespace}': {plan.origin} gives no secret for {plan.kind}",
                namespace=namespace,
                source=plan.origin,
            )
        return plan.inline_secret.get_secret_value()

    async def _read(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return await self._kube_or_fail(namespace).read_secret(namespace, name)

    async def _mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken:
        minted = await self._kube_or_fail(namespace).mint_token(
            namespace, service_account, audiences=audiences, expiration_seconds=seconds
        )
        expires_at = minted.expires_at
        timestamp = getattr(expires_at, "timestamp", None)
        return AccessToken(minted.value, timestamp() if callable(timestamp) else None)

    def _kube_or_fail(self, namespace: str) -> Kube:
        if self.kube is None:
            raise CredentialUnavailable(
                f"namespace '{namespace}': this identity needs the Kubernetes API, which is "
                "off (set kubernetes.mode)",
                namespace=namespace,
            )
        return self.kube
