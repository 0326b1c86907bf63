"""Which identity a namespace gets, decided without I/O.

A ``Plan`` names everything needed to build a credential except secret values held in
Kubernetes, which are read when a token is fetched. Plans come from, in this order (first
match wins, DESIGN.md "Identity"):

1. the tenant policy, when it names an identity;
2. a ServiceAccount of the namespace labelled ``lakegate.io/databricks-enabled=true`` (or
   Flyte's ``flyte.org/databricks-enabled=true``): federation with a token minted for it;
3. the Secret ``databricks-oauth`` (OAuth M2M) or ``databricks-token`` (PAT);
4. the gateway's own identity, only where the operator opted in.

Every workspace a plan points at is on the allow-list, whatever an annotation says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import SecretStr

from gateway.errors import CredentialUnavailable, HostNotAllowed
from gateway.settings import (
    AzureClientSecretIdentity,
    AzureWorkloadIdentity,
    DefaultIdentity,
    IdentitySettings,
    OAuthM2MIdentity,
    PatIdentity,
    PodTokenFederation,
    ServiceAccountFederation,
    Settings,
    resolve_secret,
)

Kind = Literal[
    "pat",
    "oauth-m2m",
    "service-account-federation",
    "pod-token-federation",
    "azure-client-secret",
    "azure-workload-identity",
]

ENABLED_LABELS = ("lakegate.io/databricks-enabled", "flyte.org/databricks-enabled")
ENABLED_SELECTORS = tuple(f"{label}=true" for label in ENABLED_LABELS)
CLIENT_ID_ANNOTATIONS = ("lakegate.io/databricks-client-id", "flyte.org/databricks-client-id")
AUDIENCE_ANNOTATIONS = ("lakegate.io/databricks-audience", "flyte.org/databricks-audience")
WORKSPACE_ANNOTATIONS = ("lakegate.io/databricks-workspace",)
OAUTH_SECRET = "databricks-oauth"  # noqa: S105 - the Secret's name, not a value
PAT_SECRET = "databricks-token"  # noqa: S105 - the Secret's name, not a value
WELL_KNOWN_SECRETS = (OAUTH_SECRET, PAT_SECRET)


class Account(Protocol):
    """What plans need of a ServiceAccount (``gateway.kube.accounts.ServiceAccountRef``)."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class Workspace:
    name: str
    host: str


@dataclass(frozen=True, slots=True)
class Plan:
    kind: Kind
    workspace: Workspace
    # What chose this identity, for errors and logs: "tenant policy", "ServiceAccount 'etl'".
    origin: str
    client_id: str | None = None
    secret_name: str | None = None
    service_account: str | None = None
    audience: str | None = None
    token_file: str | None = None
    tenant_id: str | None = None
    # A value from the settings or the gateway's environment; never one read from Kubernetes.
    inline_secret: SecretStr | None = None
    # The gateway's default identity is one identity for every namespace that uses it.
    shared: bool = False

    @property
    def key(self) -> str:
        """Names the identity without a secret (for grouping, caching and logs)."""
        subject = (
            self.service_account
            or (f"secret/{self.secret_name}" if self.secret_name else None)
            or self.client_id
            or self.token_file
            or "inline"
        )
        return f"{self.kind}:{subject}"


def is_enabled(account: Account) -> bool:
    return any(account.labels.get(label) == "true" for label in ENABLED_LABELS)


def _annotation(account: Account, names: Sequence[str]) -> str | None:
    for name in names:
        value = account.annotations.get(name, "").strip()
        if value:
            return value
    return None


def workspace_of(settings: Settings, namespace: str, wanted: str | None = None) -> Workspace:
    """The namespace's workspace, or the one ``wanted`` names; it must be on the allow-list."""
    if wanted is not None:
        found = settings.workspace_named(wanted)
        if found is None:
            raise HostNotAllowed(
                f"namespace '{namespace}' asks for workspace '{wanted}', which is not on the "
                f"gateway's allow-list ({', '.join(sorted(settings.workspaces)) or 'empty'}); "
                "lakegate never sends a credential to an unlisted host",
                namespace=namespace,
            )
        return Workspace(found[0], found[1].host)
    name = settings.tenants.workspace_name(namespace)
    listed = settings.workspaces.get(name) if name else None
    if name is None or listed is None:
        raise HostNotAllowed(
            f"namespace '{namespace}' has no workspace: set 'workspace' in its tenant policy, "
            "'defaults.workspace' in the tenants file, or annotate its ServiceAccount with "
            f"{WORKSPACE_ANNOTATIONS[0]}",
            namespace=namespace,
        )
    return Workspace(name, listed.host)


def from_policy(
    settings: Settings,
    namespace: str,
    identity: IdentitySettings,
    environ: Mapping[str, str],
    default: Plan | None,
) -> Plan:
    """The plan for an identity the operator wrote in the tenant policy."""
    origin = "tenant policy"
    if isinstance(identity, DefaultIdentity):
        if default is None:
            raise CredentialUnavailable(
                f"namespace '{namespace}' is set to the gateway's default identity, but the "
                "gateway has none (set DATABRICKS_HOST and a DATABRICKS_* credential)",
                namespace=namespace,
                source=origin,
            )
        return default
    workspace = workspace_of(settings, namespace)

    def inline(value: SecretStr | None, env: str | None) -> SecretStr | None:
        if value is None and env is None:
            return None
        return SecretStr(resolve_secret(value, env, environ))

    if isinstance(identity, PatIdentity):
        return Plan(
            "pat",
            workspace,
            origin,
            secret_name=identity.secret.name if identity.secret else None,
            inline_secret=inline(identity.token, identity.token_env),
        )
    if isinstance(identity, OAuthM2MIdentity):
        return Plan(
            "oauth-m2m",
            workspace,
            origin,
            client_id=identity.client_id,
            secret_name=identity.secret.name if identity.secret else None,
            inline_secret=inline(identity.client_secret, identity.client_secret_env),
        )
    if isinstance(identity, ServiceAccountFederation):
        return Plan(
            "service-account-federation",
            workspace,
            origin,
            client_id=identity.client_id,
            service_account=identity.service_account,
            audience=identity.audience or default_audience(settings, workspace),
        )
    if isinstance(identity, PodTokenFederation):
        token_file = identity.token_file or settings.identity.pod_token_file
        if not token_file:
            raise CredentialUnavailable(
                f"namespace '{namespace}' federates with the gateway pod's token, but no "
                "token file is set (identity.pod_token_file or the policy's token_file)",
                namespace=namespace,
                source=origin,
            )
        return Plan(
            "pod-token-federation",
            workspace,
            origin,
            client_id=identity.client_id,
            token_file=token_file,
        )
    if isinstance(identity, AzureClientSecretIdentity):
        return Plan(
            "azure-client-secret",
            workspace,
            origin,
            client_id=identity.client_id,
            tenant_id=identity.tenant_id,
            secret_name=identity.secret.name if identity.secret else None,
            inline_secret=inline(identity.client_secret, identity.client_secret_env),
        )
    if isinstance(identity, AzureWorkloadIdentity):
        return Plan(
            "azure-workload-identity",
            workspace,
            origin,
            client_id=identity.client_id,
            tenant_id=identity.tenant_id,
            token_file=identity.token_file,
        )
    raise TypeError(type(identity).__name__)  # pragma: no cover - the union is closed


def default_audience(settings: Settings, workspace: Workspace) -> str:
    # Without a configured audience the SDKs request the workspace's token endpoint URL
    # (reference §4.3); a federation policy must then list that audience.
    return settings.identity.default_audience or f"{workspace.host}/oidc/v1/token"


def from_service_account(settings: Settings, account: Account) -> Plan:
    """Federation with a token minted for a labelled ServiceAccount, per its annotations."""
    namespace = account.namespace
    workspace = workspace_of(settings, namespace, _annotation(account, WORKSPACE_ANNOTATIONS))
    return Plan(
        "service-account-federation",
        workspace,
        f"ServiceAccount '{account.name}'",
        client_id=_annotation(account, CLIENT_ID_ANNOTATIONS),
        service_account=account.name,
        audience=_annotation(account, AUDIENCE_ANNOTATIONS)
        or default_audience(settings, workspace),
    )


def choose_account(namespace: str, labelled: Sequence[Account]) -> Account | None:
    """The one labelled ServiceAccount of the namespace; two or more is the operator's error."""
    if len(labelled) > 1:
        names = ", ".join(sorted(a.name for a in labelled))
        raise CredentialUnavailable(
            f"namespace '{namespace}' has several ServiceAccounts labelled for lakegate "
            f"({names}): remove the label from all but one, or name one in the request "
            "(identity.service_account)",
            namespace=namespace,
            source="ServiceAccounts",
        )
    return labelled[0] if labelled else None


def from_secret(settings: Settings, namespace: str, name: str, keys: Sequence[str]) -> Plan:
    """OAuth M2M when the Secret holds client_id and client_secret; a PAT when it holds token."""
    workspace = workspace_of(settings, namespace)
    origin = f"Secret '{name}'"
    if {"token", "ca.crt", "namespace"} <= set(keys):
        # A ServiceAccount token Secret: its token is a Kubernetes credential, which must
        # never be sent to Databricks as if it were a PAT.
        raise CredentialUnavailable(
            f"Secret '{name}' in namespace '{namespace}' is a Kubernetes ServiceAccount token, "
            "not a Databricks credential",
            namespace=namespace,
            source=origin,
        )
    if "client_id" in keys and "client_secret" in keys:
        return Plan("oauth-m2m", workspace, origin, secret_name=name)
    if "token" in keys:
        return Plan("pat", workspace, origin, secret_name=name)
    raise CredentialUnavailable(
        f"Secret '{name}' in namespace '{namespace}' holds neither 'client_id' and "
        "'client_secret' (OAuth M2M) nor 'token' (PAT)",
        namespace=namespace,
        source=origin,
    )


def not_configured_message(namespace: str, *, kubernetes: bool) -> str:
    ways = [f"add an identity for '{namespace}' to the tenants file"]
    if kubernetes:
        ways += [
            f"label a ServiceAccount in it {ENABLED_SELECTORS[0]}",
            f"create a Secret '{OAUTH_SECRET}' (client_id, client_secret) or "
            f"'{PAT_SECRET}' (token) in it",
        ]
    return (
        f"namespace '{namespace}' has no Databricks identity and lakegate does not lend it "
        "another's: " + "; or ".join(ways)
    )
