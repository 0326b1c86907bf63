"""The Azure management token of an Entra service principal (reference §5).

An Entra principal that has a role on the workspace's Azure resource but is not yet a
workspace user gets in when its Jobs calls also carry a token for Azure Resource Manager
(``X-Databricks-Azure-SP-Management-Token``) and the workspace's resource id. That token is
the same client-credentials grant at Entra, proven the same way (client secret, or workload
identity's federated JWT), for another scope: so the kind's own fetch is reused with a token
client that asks Entra for ``identity.azure_management_resource``. The Jobs client asks for it
only when the workspace's ``azure_resource_id`` is configured, so no other call is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.databricks.auth import AccessToken
from gateway.databricks.oauth import TokenClient
from gateway.identity import kinds
from gateway.identity.cache import Fetch, TokenCache
from gateway.identity.strategy import Plan, Tools
from gateway.settings import IdentityOptions

ENTRA_KINDS = frozenset({kinds.AZURE_CLIENT_SECRET.name, kinds.AZURE_WORKLOAD_IDENTITY.name})


@dataclass(frozen=True, slots=True)
class ScopedTools:
    """The builder's tools, with a token client that asks Entra for another scope (the
    management scope here, Azure DevOps's in ``entra_resources``)."""

    inner: Tools
    tokens: TokenClient

    @property
    def cache(self) -> TokenCache:
        return self.inner.cache

    @property
    def options(self) -> IdentityOptions:
        return self.inner.options

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return await self.inner.read_secret(namespace, name)

    async def mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken:
        return await self.inner.mint(namespace, service_account, audiences, seconds)


def management_scope(options: IdentityOptions) -> str:
    return f"{options.azure_management_resource}.default"


def management_fetch(plan: Plan, namespace: str, tools: Tools) -> Fetch | None:
    """The fetch of the plan's management token; None when the plan is not an Entra one."""
    if plan.kind not in ENTRA_KINDS:
        return None
    scoped = tools.tokens.with_entra_scope(management_scope(tools.options))
    return kinds.of(plan).fetch(plan, namespace, ScopedTools(tools, scoped))
