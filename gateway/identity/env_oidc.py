"""The SDK's ``env-oidc``: federation with an OIDC JWT held in an environment variable.

Only the gateway's own identity has it (``DATABRICKS_OIDC_TOKEN``, or the variable that
``DATABRICKS_OIDC_TOKEN_ENV`` names): a tenant's identity never reads the gateway's
environment for a token, so no tenant policy type stands for it. The JWT is exchanged at the
workspace's token endpoint (RFC 8693) like any other federated subject, as the service
principal ``DATABRICKS_CLIENT_ID`` when it is set.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from gateway.identity.cache import Fetch
from gateway.identity.strategy import (
    Environment,
    IdentityKind,
    Plan,
    PlanContext,
    Tools,
    exchange,
    first,
    inline,
    require,
)
from gateway.secrets_registry import remember
from gateway.settings import sdk_env
from gateway.settings.base import Frozen


class EnvOidcFederation(Frozen):
    """An OIDC JWT from the gateway's environment, and the service principal it stands for."""

    type: Literal["env-oidc"] = "env-oidc"
    token_env: str
    token: SecretStr
    client_id: str | None = None


class EnvOidc(IdentityKind[EnvOidcFederation]):
    name = "env-oidc"
    title = "environment OIDC token"
    settings = EnvOidcFederation
    auth_type = "env-oidc"

    def plan(self, identity: EnvOidcFederation, where: PlanContext) -> Plan:
        return where.plan(self.name, client_id=identity.client_id, inline_secret=identity.token)

    def from_environment(self, env: Environment) -> EnvOidcFederation | None:
        variable = sdk_env.oidc_token_variable(env.variables)
        token = env.get(variable)
        if token is None:
            return None
        remember(token)
        return EnvOidcFederation(
            token_env=variable, token=SecretStr(token), client_id=env.get(sdk_env.CLIENT_ID)
        )

    def subject(self, plan: Plan) -> str:
        return first(plan.client_id)

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        (token,) = require(plan, namespace, oidc_token=inline(plan))

        async def subject() -> str:
            return token

        return exchange(plan, namespace, tools, subject)


ENV_OIDC = EnvOidc()
