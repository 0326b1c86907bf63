"""Entra ID tokens for other Azure resources, asked with a namespace's own Entra identity.

An Entra service principal (client secret or workload identity) proves itself to Entra the
same way whatever resource it asks a token for; only the scope differs. So a token for, say,
Azure DevOps (``gateway.gitcreds``) is the kind's own fetch, lent a token client that asks
Entra for that scope (``TokenClient.with_entra_scope``), as the management token is
(``azure_management``). Such tokens are fetched afresh at every ask and never cached here:
whoever asks decides how long to rely on one, and nothing in memory outlives its use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from gateway.databricks.auth import AccessToken
from gateway.identity import kinds
from gateway.identity.azure_management import ENTRA_KINDS, ScopedTools
from gateway.identity.cache import CachedCredential, CacheKey, Fetch, TokenCache
from gateway.identity.strategy import Plan, Tools

# A fetch of the plan's token for a scope ("<resource>/.default").
ScopedFetch = Callable[[str], Fetch]


@runtime_checkable
class EntraResourceTokens(Protocol):
    """A credential of an Entra service principal, which can ask Entra for other resources."""

    async def entra_resource_token(self, scope: str) -> AccessToken:
        """A new token for ``scope``, fetched now with the credential's own Entra identity."""
        ...


def scoped_fetch(plan: Plan, namespace: str, tools: Tools) -> ScopedFetch | None:
    """How the plan's identity gets tokens for other scopes; None when it is not an Entra one."""
    if plan.kind not in ENTRA_KINDS:
        return None
    kind = kinds.of(plan)

    def for_scope(scope: str) -> Fetch:
        scoped = ScopedTools(tools, tools.tokens.with_entra_scope(scope))
        return kind.fetch(plan, namespace, scoped)

    return for_scope


class EntraCredential(CachedCredential):
    """A cached Entra credential that can also fetch tokens for other Azure resources."""

    def __init__(
        self,
        cache: TokenCache,
        key: CacheKey,
        fetch: Fetch,
        *,
        scoped: ScopedFetch,
        kind: str,
        namespace: str,
        on_invalidate: Callable[[], None] | None = None,
        management: Fetch | None = None,
    ) -> None:
        super().__init__(
            cache,
            key,
            fetch,
            kind=kind,
            namespace=namespace,
            on_invalidate=on_invalidate,
            management=management,
        )
        self._scoped = scoped

    async def entra_resource_token(self, scope: str) -> AccessToken:
        return await self._scoped(scope)()
