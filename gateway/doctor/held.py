"""The walk's token as a ``TokenProvider``, for the calls a check makes as the principal.

A refusal is reported, not refreshed. An Entra principal also proves itself to Azure Resource
Manager, as its runs' calls do (the Jobs and Git Credentials clients ask only when the
workspace's ``azure_resource_id`` is set), and asks Entra for other resources (Azure DevOps,
for the Git credential step) with the walk's own tools: the same fetch as the walk's token,
for another scope, fetched at each ask and never cached.
"""

from __future__ import annotations

from gateway.databricks.auth import AccessToken
from gateway.identity import entra_resources
from gateway.identity.azure_management import management_fetch
from gateway.identity.cache import Fetch
from gateway.identity.entra_resources import ScopedFetch
from gateway.identity.strategy import Plan, Tools


class HeldToken:
    def __init__(self, token: str, management: Fetch | None) -> None:
        self._token = token
        self._management = management

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        return None

    async def azure_management_token(self) -> str | None:
        return None if self._management is None else (await self._management()).value


class HeldEntraToken(HeldToken):
    """An Entra principal's held token: also an ``EntraResourceTokens``."""

    def __init__(self, token: str, management: Fetch | None, scoped: ScopedFetch) -> None:
        super().__init__(token, management)
        self._scoped = scoped

    async def entra_resource_token(self, scope: str) -> AccessToken:
        return await self._scoped(scope)()


def held(plan: Plan, namespace: str, tools: Tools, token: AccessToken) -> HeldToken:
    """The walk's ``token`` for ``plan``, with what its kind can also ask of Entra."""
    management = management_fetch(plan, namespace, tools)
    scoped = entra_resources.scoped_fetch(plan, namespace, tools)
    if scoped is None:
        return HeldToken(token.value, management)
    return HeldEntraToken(token.value, management, scoped)
