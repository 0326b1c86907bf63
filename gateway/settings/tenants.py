"""tenants.yaml: per-namespace policy (workspace, identity, quotas) and its defaults.

An identity's secret is given inline (masked), named by an environment variable of the
gateway, or held in a Kubernetes Secret in the tenant's own namespace (``secret``); exactly one
of these. A Secret is read when a token is needed, so rotating it needs no restart. What each
identity model means (its plan, problems, cache key and token fetch) is its strategy's, in
``gateway.identity.kinds``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.settings.base import (
    NAMESPACE_RE,
    OBJECT_NAME_RE,
    Frozen,
    SecretRef,
    check_scopes,
    exactly_one,
)
from gateway.settings.webhooks import TenantWebhooks


def _optional_scopes(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if value is None else check_scopes(value)


class PatIdentity(Frozen):
    """A personal access token (Secret key ``token``)."""

    type: Literal["pat"]
    token: SecretStr | None = None
    token_env: str | None = None
    secret: SecretRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PatIdentity:
        exactly_one("pat", token=self.token, token_env=self.token_env, secret=self.secret)
        return self


class OAuthM2MIdentity(Frozen):
    """A Databricks service principal's OAuth client (Secret keys client_id, client_secret)."""

    type: Literal["oauth-m2m"]
    client_id: str | None = Field(default=None, min_length=1)
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    secret: SecretRef | None = None
    # OAuth scopes asked of the token endpoint; None: identity.oauth_scopes (all-apis).
    scopes: tuple[str, ...] | None = None
    _scopes = field_validator("scopes")(_optional_scopes)

    @model_validator(mode="after")
    def _one_source(self) -> OAuthM2MIdentity:
        exactly_one(
            "oauth-m2m",
            client_secret=self.client_secret,
            client_secret_env=self.client_secret_env,
            secret=self.secret,
        )
        if self.client_id is None and self.secret is None:
            raise ValueError("oauth-m2m: 'client_id' is required unless 'secret' holds it")
        return self


class ServiceAccountFederation(Frozen):
    """Workload identity federation with a token minted for a ServiceAccount of the tenant."""

    type: Literal["service-account-federation"]
    service_account: str
    # The Databricks service principal whose federation policy trusts the ServiceAccount;
    # without it the account-wide policy applies.
    client_id: str | None = None
    audience: str | None = None
    # OAuth scopes asked of the token endpoint; None: identity.oauth_scopes (all-apis).
    scopes: tuple[str, ...] | None = None
    _scopes = field_validator("scopes")(_optional_scopes)

    @field_validator("service_account")
    @classmethod
    def _name(cls, value: str) -> str:
        if not OBJECT_NAME_RE.match(value):
            raise ValueError(f"'{value}' is not a Kubernetes object name")
        return value


class PodTokenFederation(Frozen):
    """Federation with the gateway pod's own projected token (identity.pod_token_file)."""

    type: Literal["pod-token-federation"]
    client_id: str | None = None
    token_file: str | None = None
    # OAuth scopes asked of the token endpoint; None: identity.oauth_scopes (all-apis).
    scopes: tuple[str, ...] | None = None
    _scopes = field_validator("scopes")(_optional_scopes)


class AzureClientSecretIdentity(Frozen):
    """An Entra ID service principal with a client secret, for Azure Databricks."""

    type: Literal["azure-client-secret"]
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    secret: SecretRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AzureClientSecretIdentity:
        exactly_one(
            "azure-client-secret",
            client_secret=self.client_secret,
            client_secret_env=self.client_secret_env,
            secret=self.secret,
        )
        return self


class AzureWorkloadIdentity(Frozen):
    """Azure workload identity: a federated token file used as the client assertion."""

    type: Literal["azure-workload-identity"]
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    token_file: str = Field(min_length=1)


class DefaultIdentity(Frozen):
    """The gateway's own identity (DATABRICKS_* environment), chosen for this namespace."""

    type: Literal["default"]


IdentitySettings = Annotated[
    PatIdentity
    | OAuthM2MIdentity
    | ServiceAccountFederation
    | PodTokenFederation
    | AzureClientSecretIdentity
    | AzureWorkloadIdentity
    | DefaultIdentity,
    Field(discriminator="type"),
]
# Each model's ``type`` literal, read off the union so that a new model needs no list here.
IDENTITY_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0]
    for model in get_args(get_args(IdentitySettings)[0])
)


class QuotaSettings(Frozen):
    max_active_runs: int = Field(default=20, ge=1)
    max_queued_runs: int = Field(default=200, ge=0)
    submissions_per_minute: float = Field(default=120.0, gt=0)
    # At most 1,000: the ledger reads the latest 1,024 submissions for the bucket.
    burst: int = Field(default=20, ge=1, le=1000)
    default_timeout_seconds: int = Field(default=0, ge=0)
    max_timeout_seconds: int = Field(default=0, ge=0)
    # Over max_active_runs (or while paused) a new run waits QUEUED, or is refused with 429.
    over_active: Literal["queue", "refuse"] = "queue"
    # The namespace's weight when queued runs of several namespaces wait for one workspace.
    share: float = Field(default=1.0, gt=0)
    # Paused: queued runs wait and new ones queue (or are refused, per over_active).
    paused: bool = False
    # Draining: new runs are refused; active and queued ones go on.
    draining: bool = False
    # A budget of run time over a rolling 24 h: each run's time from SUBMITTING to its end (or
    # now). At or over it new runs wait QUEUED (or are refused) until enough of the day's run
    # time leaves the window. None: no budget.
    run_hours_per_day: float | None = Field(default=None, gt=0)
    # What a new run meets over the budget; None: the same as over_active.
    over_run_hours: Literal["queue", "refuse"] | None = None

    def run_hours_policy(self) -> Literal["queue", "refuse"]:
        return self.over_run_hours or self.over_active


class GuardrailSettings(Frozen):
    """What a submitted spec may ask of Databricks; a refusal names the rule and the field."""

    cluster_policy_ids: tuple[str, ...] | None = None
    required_cluster_policy: bool = False
    max_workers: int | None = Field(default=None, ge=0)
    node_types: tuple[str, ...] | None = None
    serverless_only: bool = False


# ``entra``: before a run with an Azure DevOps git_source, lakegate puts an Entra ID token for
# Azure DevOps, fetched with the namespace's own Azure identity, in the principal's Databricks
# Git credential (gateway.gitcreds). Off by default: nothing touches Git credentials.
GitCredentialsMode = Literal["off", "entra"]


class TenantPolicy(Frozen):
    workspace: str | None = None
    identity: IdentitySettings | None = None
    quotas: QuotaSettings | None = None
    guardrails: GuardrailSettings | None = None
    webhooks: TenantWebhooks | None = None
    git_credentials: GitCredentialsMode = "off"


class TenantDefaults(Frozen):
    workspace: str | None = None
    quotas: QuotaSettings = QuotaSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    webhooks: TenantWebhooks = TenantWebhooks()


class TenantsSettings(Frozen):
    defaults: TenantDefaults = TenantDefaults()
    namespaces: dict[str, TenantPolicy] = Field(default_factory=dict)

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: dict[str, TenantPolicy]) -> dict[str, TenantPolicy]:
        for name in value:
            if not NAMESPACE_RE.match(name):
                raise ValueError(f"'{name}' is not a Kubernetes namespace name (RFC 1123 label)")
        return value

    def policy(self, namespace: str) -> TenantPolicy | None:
        return self.namespaces.get(namespace)

    def quotas(self, namespace: str) -> QuotaSettings:
        policy = self.namespaces.get(namespace)
        return (policy.quotas if policy and policy.quotas else None) or self.defaults.quotas

    def guardrails(self, namespace: str) -> GuardrailSettings:
        policy = self.namespaces.get(namespace)
        found = policy.guardrails if policy else None
        return found or self.defaults.guardrails

    def workspace_name(self, namespace: str) -> str | None:
        policy = self.namespaces.get(namespace)
        return (policy.workspace if policy else None) or self.defaults.workspace

    def git_credentials(self, namespace: str) -> GitCredentialsMode:
        """Whether lakegate keeps the namespace's Azure DevOps Git credential (``entra``)."""
        policy = self.namespaces.get(namespace)
        return policy.git_credentials if policy else "off"

    def webhooks(self, namespace: str) -> TenantWebhooks:
        """The namespace's webhook block, or the defaults' when it has none (not merged)."""
        policy = self.namespaces.get(namespace)
        return (policy.webhooks if policy and policy.webhooks else None) or self.defaults.webhooks


@dataclass(frozen=True, slots=True)
class TenantRefusal:
    """Why one tenant's policy cannot work in this process: the tenant is refused, the gateway
    still starts. ``reason`` is a metric label (``environment``, ``file``)."""

    namespace: str
    reason: str
    detail: str

    def message(self) -> str:
        return f"namespace '{self.namespace}' is refused: {self.detail}"


def identity_refusals(
    namespace: str, identity: IdentitySettings, environ: Mapping[str, str], *, files: bool = True
) -> list[TenantRefusal]:
    """What this process cannot give a tenant's identity: a variable it names that is unset,
    a token file it names that cannot be read (only with ``files``: that touches the disk, so
    callers on the event loop run it in a thread). Read off the fields' names (``*_env``,
    ``token_file``), so a new identity model needs no entry here."""
    found = []
    for name, value in identity:
        if not isinstance(value, str):
            continue
        key = f"tenants.namespaces.{namespace}.identity.{name}"
        if name.endswith("_env") and not environ.get(value):
            found.append(
                TenantRefusal(
                    namespace,
                    "environment",
                    f"{key}: environment variable {value} is not set or empty; set it in the "
                    "gateway's environment (for example in the lakegate-tenant-credentials "
                    "Secret) and restart: a running gateway never sees its environment "
                    "change (to heal without a restart, name the credential another way in "
                    "the tenants file and reload it)",
                )
            )
        elif files and name == "token_file" and not os.access(value, os.R_OK):
            found.append(
                TenantRefusal(
                    namespace,
                    "file",
                    f"{key}: {value} does not exist or cannot be read by the gateway; mount "
                    "the token file there or correct the path (no restart needed: the "
                    "tenant is served once the file is readable)",
                )
            )
    return found


def tenant_refusals(
    tenants: TenantsSettings, environ: Mapping[str, str], *, files: bool = True
) -> list[TenantRefusal]:
    """Every configured tenant this process must refuse, in the tenants file's order."""
    found: list[TenantRefusal] = []
    for namespace, policy in tenants.namespaces.items():
        if policy.identity is not None:
            found += identity_refusals(namespace, policy.identity, environ, files=files)
    return found
