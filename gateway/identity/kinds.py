"""The kinds of Databricks identity lakegate knows, one small strategy each: add a kind here.

PAT, OAuth M2M, ServiceAccount federation, pod-token federation, Entra ID client secret and
Azure workload identity. What a kind is made of (settings, problems, environment, cache key,
pin, fetch) is drawn in ``gateway.identity.strategy``. A new kind is a class here, its entry
in the tuples at the end (``KINDS``; ``DEFAULT_ORDER`` if the gateway's environment may hold
it; ``SECRET_KINDS`` if a namespace's Secret may), and its settings model in the
``IdentitySettings`` union of ``gateway.settings.tenants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.identity import sources, token_places
from gateway.identity.cache import Fetch
from gateway.identity.env_oidc import ENV_OIDC
from gateway.identity.strategy import (
    NEEDS_KUBERNETES,
    Environment,
    IdentityKind,
    Plan,
    PlanContext,
    Tools,
    client_of,
    entra,
    every,
    exchange,
    first,
    held_values,
    inline,
    require,
    scope_of,
    secret_name,
    secret_pin,
    secret_problems,
    secret_subject,
    token_file_of,
)
from gateway.settings import (
    AzureClientSecretIdentity,
    AzureWorkloadIdentity,
    IdentitySettings,
    OAuthM2MIdentity,
    PatIdentity,
    PodTokenFederation,
    SecretRef,
    ServiceAccountFederation,
    Settings,
)


class Pat(IdentityKind[PatIdentity]):
    """A personal access token, given or in a Secret (key ``token``); it never expires."""

    name = "pat"
    title = "PAT"
    settings = PatIdentity
    auth_type = "pat"
    secret_keys = frozenset({"token"})

    def plan(self, identity: PatIdentity, where: PlanContext) -> Plan:
        token = where.secret(identity.token, identity.token_env)
        return where.plan(self.name, secret_name=secret_name(identity.secret), inline_secret=token)

    def problems(
        self, identity: PatIdentity, environ: Mapping[str, str], *, kubernetes: bool
    ) -> list[str]:
        return secret_problems(environ, kubernetes, identity.secret, identity.token_env)

    def from_environment(self, env: Environment) -> PatIdentity | None:
        token = env.get("DATABRICKS_TOKEN")
        return PatIdentity(type="pat", token=SecretStr(token)) if token else None

    def in_secret(self, name: str) -> PatIdentity:
        return PatIdentity(type="pat", secret=SecretRef(name=name))

    def subject(self, plan: Plan) -> str:
        return first(secret_subject(plan))

    def pin(self, plan: Plan) -> dict[str, str]:
        return secret_pin(plan)

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        values = held_values(plan, namespace, tools, token=inline(plan))

        async def fetch() -> AccessToken:
            return AccessToken((await values())["token"].strip())

        return fetch


class OAuthM2M(IdentityKind[OAuthM2MIdentity]):
    """A service principal's OAuth client id and secret (a Secret's keys client_id and
    client_secret), traded at the workspace's token endpoint (reference §3)."""

    name = "oauth-m2m"
    title = "OAuth M2M"
    settings = OAuthM2MIdentity
    auth_type = "oauth-m2m"
    secret_keys = frozenset({"client_id", "client_secret"})

    def plan(self, identity: OAuthM2MIdentity, where: PlanContext) -> Plan:
        return where.plan(
            self.name,
            client_id=identity.client_id,
            secret_name=secret_name(identity.secret),
            inline_secret=where.secret(identity.client_secret, identity.client_secret_env),
            scopes=identity.scopes,
        )

    def problems(
        self, identity: OAuthM2MIdentity, environ: Mapping[str, str], *, kubernetes: bool
    ) -> list[str]:
        return secret_problems(environ, kubernetes, identity.secret, identity.client_secret_env)

    def from_environment(self, env: Environment) -> OAuthM2MIdentity | None:
        found = env.every("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET")
        if found is None:
            return None
        client_id, secret = found
        return OAuthM2MIdentity(
            type="oauth-m2m", client_id=client_id, client_secret=SecretStr(secret)
        )

    def in_secret(self, name: str) -> OAuthM2MIdentity:
        return OAuthM2MIdentity(type="oauth-m2m", secret=SecretRef(name=name))

    def subject(self, plan: Plan) -> str:
        return every(secret_subject(plan), client_of(plan))

    def pin(self, plan: Plan) -> dict[str, str]:
        return secret_pin(plan)

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        values = held_values(
            plan, namespace, tools, client_id=plan.client_id, client_secret=inline(plan)
        )
        host, scope = plan.workspace.host, scope_of(plan, tools.options)

        async def fetch() -> AccessToken:
            found = await values()
            return await tools.tokens.client_credentials(
                host, found["client_id"], found["client_secret"], namespace=namespace, scope=scope
            )

        return fetch


class ServiceAccount(IdentityKind[ServiceAccountFederation]):
    """Federation with a token minted (TokenRequest) for a ServiceAccount of the namespace."""

    name = "service-account-federation"
    title = "ServiceAccount federation"
    settings = ServiceAccountFederation

    def plan(self, identity: ServiceAccountFederation, where: PlanContext) -> Plan:
        return where.plan(
            self.name,
            client_id=identity.client_id,
            service_account=identity.service_account,
            audience=identity.audience or default_audience(where.settings),
            scopes=identity.scopes,
        )

    def problems(
        self, identity: ServiceAccountFederation, environ: Mapping[str, str], *, kubernetes: bool
    ) -> list[str]:
        return [] if kubernetes else [NEEDS_KUBERNETES]

    def labelled(
        self, name: str, *, client_id: str | None, audience: str | None
    ) -> ServiceAccountFederation:
        """The settings a ServiceAccount labelled for lakegate stands for, per its annotations."""
        return ServiceAccountFederation(
            type="service-account-federation",
            service_account=name,
            client_id=client_id,
            audience=audience,
        )

    def subject(self, plan: Plan) -> str:
        return first(plan.service_account)

    def pin(self, plan: Plan) -> dict[str, str]:
        account = plan.service_account
        return {"service_account": account} if plan.discovered and account else {}

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        account, audience = require(
            plan, namespace, service_account=plan.service_account, audience=plan.audience
        )
        seconds = tools.options.service_account_token_seconds
        subject = sources.minted_service_account_token(
            tools.cache, tools.mint, namespace, account, audience, seconds
        )
        return exchange(plan, namespace, tools, subject)


class PodToken(IdentityKind[PodTokenFederation]):
    """Federation with the gateway pod's own projected token (identity.pod_token_file)."""

    name = "pod-token-federation"
    title = "pod token federation"
    settings = PodTokenFederation
    auth_type = "file-oidc"

    def plan(self, identity: PodTokenFederation, where: PlanContext) -> Plan:
        # Flyte's order: the policy's or identity.pod_token_file, AWS_WEB_IDENTITY_TOKEN_FILE,
        # then /var/run/secrets/databricks/token; a missing one falls through at each read.
        places = token_places.pod_token_places(identity.token_file, where)
        first_file, *others = (path for path, _ in places)
        return where.plan(
            self.name,
            client_id=identity.client_id,
            token_file=first_file,
            token_fallbacks=tuple(others),
            token_settings=places,
            scopes=identity.scopes,
        )

    def from_environment(self, env: Environment) -> PodTokenFederation | None:
        token_file = env.get("DATABRICKS_OIDC_TOKEN_FILEPATH", "DATABRICKS_OIDC_TOKEN_FILE")
        if token_file is None:
            return None
        client_id = env.get("DATABRICKS_CLIENT_ID")
        return PodTokenFederation(
            type="pod-token-federation", client_id=client_id, token_file=token_file
        )

    def subject(self, plan: Plan) -> str:
        return first(client_of(plan), plan.token_file)

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        return exchange(plan, namespace, tools, token_file_of(plan, namespace))


class AzureClientSecret(IdentityKind[AzureClientSecretIdentity]):
    """An Entra ID application's client secret, traded at Entra for Azure Databricks."""

    name = "azure-client-secret"
    title = "Entra ID client secret"
    settings = AzureClientSecretIdentity
    auth_type = "azure-client-secret"

    def plan(self, identity: AzureClientSecretIdentity, where: PlanContext) -> Plan:
        return where.plan(
            self.name,
            client_id=identity.client_id,
            tenant_id=identity.tenant_id,
            secret_name=secret_name(identity.secret),
            inline_secret=where.secret(identity.client_secret, identity.client_secret_env),
        )

    def problems(
        self, identity: AzureClientSecretIdentity, environ: Mapping[str, str], *, kubernetes: bool
    ) -> list[str]:
        return secret_problems(environ, kubernetes, identity.secret, identity.client_secret_env)

    def from_environment(self, env: Environment) -> AzureClientSecretIdentity | None:
        found = env.every("ARM_TENANT_ID", "ARM_CLIENT_ID", "ARM_CLIENT_SECRET")
        if found is None:
            return None
        tenant, client, secret = found
        return AzureClientSecretIdentity(
            type="azure-client-secret",
            tenant_id=tenant,
            client_id=client,
            client_secret=SecretStr(secret),
        )

    def subject(self, plan: Plan) -> str:
        return every(secret_subject(plan), client_of(plan))

    def pin(self, plan: Plan) -> dict[str, str]:
        return secret_pin(plan)

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        tenant_id, client_id = require(
            plan, namespace, tenant_id=plan.tenant_id, client_id=plan.client_id
        )
        proof = held_values(plan, namespace, tools, client_secret=inline(plan))
        return entra(plan, namespace, tools, tenant_id, client_id, proof)


class AzureWorkload(IdentityKind[AzureWorkloadIdentity]):
    """Azure workload identity: a federated token file is the client's proof at Entra."""

    name = "azure-workload-identity"
    title = "Azure workload identity"
    settings = AzureWorkloadIdentity
    auth_type = "azure-workload-identity"

    def plan(self, identity: AzureWorkloadIdentity, where: PlanContext) -> Plan:
        return where.plan(
            self.name,
            client_id=identity.client_id,
            tenant_id=identity.tenant_id,
            token_file=identity.token_file,
            token_settings=token_places.azure_token_places(identity.token_file, where),
        )

    def from_environment(self, env: Environment) -> AzureWorkloadIdentity | None:
        found = env.every("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")
        if found is None:
            return None
        tenant, client, token_file = found
        return AzureWorkloadIdentity(
            type="azure-workload-identity",
            tenant_id=tenant,
            client_id=client,
            token_file=token_file,
        )

    def subject(self, plan: Plan) -> str:
        return first(client_of(plan))

    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch:
        tenant_id, client_id = require(
            plan, namespace, tenant_id=plan.tenant_id, client_id=plan.client_id
        )
        assertion = token_file_of(plan, namespace)

        async def proof() -> dict[str, str]:
            # Read at every fetch: the kubelet rotates the projected token.
            return oauth.jwt_assertion(await assertion())

        return entra(plan, namespace, tools, tenant_id, client_id, proof)


PAT = Pat()
OAUTH_M2M = OAuthM2M()
SERVICE_ACCOUNT = ServiceAccount()
POD_TOKEN = PodToken()
AZURE_CLIENT_SECRET = AzureClientSecret()
AZURE_WORKLOAD_IDENTITY = AzureWorkload()
KINDS: Mapping[str, IdentityKind[Any]] = {
    kind.name: kind
    for kind in (
        PAT,
        OAUTH_M2M,
        SERVICE_ACCOUNT,
        POD_TOKEN,
        AZURE_CLIENT_SECRET,
        AZURE_WORKLOAD_IDENTITY,
        ENV_OIDC,
    )
}
# The Databricks SDK's order for the gateway's own identity (DATABRICKS_AUTH_TYPE picks one).
DEFAULT_ORDER: tuple[IdentityKind[Any], ...] = (
    PAT,
    OAUTH_M2M,
    ENV_OIDC,
    POD_TOKEN,
    AZURE_CLIENT_SECRET,
    AZURE_WORKLOAD_IDENTITY,
)
# The kinds a namespace's Secret may hold, by its keys; the first that matches wins.
SECRET_KINDS: tuple[IdentityKind[Any], ...] = (OAUTH_M2M, PAT)


def for_settings(identity: IdentitySettings) -> IdentityKind[Any] | None:
    """The kind of a policy's identity; None for ``type: default``, the gateway's own."""
    return KINDS.get(identity.type)


# Flyte's Databricks connector asks for this audience when a ServiceAccount names none, so a
# federation policy written for Flyte trusts lakegate's minted tokens unchanged.
FLYTE_AUDIENCE = "databricks"


def default_audience(settings: Settings) -> str:
    """A minted token's audience when the ServiceAccount or policy names none: the operator's
    ``identity.default_audience``, else Flyte's ``databricks``."""
    return settings.identity.default_audience or FLYTE_AUDIENCE


def of(plan: Plan) -> IdentityKind[Any]:
    """The kind a plan is of."""
    return KINDS[plan.kind]
