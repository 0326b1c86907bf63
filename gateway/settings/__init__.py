"""Typed, frozen settings: gateway.yaml, tenants.yaml, and environment overrides.

``load_settings(path)`` reads the gateway file, the tenants file it names (relative to itself),
applies ``LAKEGATE_<SECTION>__<KEY>`` environment overrides to the gateway file, validates the
whole, and raises ``ConfigError`` listing every problem as ``<file or env var>: <key>: <what>``.
Secrets are ``SecretStr`` and print as ``**********``.

The modules: ``gateway`` (the whole, and the checks across sections), ``process`` (server,
store, logging, poller), ``upstreams`` (workspaces, Databricks, Kubernetes, identity options),
``callers`` (who may call), ``tenants`` (per-namespace policy), ``loading`` (files and the
environment), ``base`` (what every model shares), ``sdk_env`` (the Databricks SDK's
environment for the gateway's own identity, and its mistakes).
"""

from gateway.settings.base import (
    NAMESPACE_RE,
    OBJECT_NAME_RE,
    SecretRef,
    is_loopback_host,
    normalize_authority,
    normalize_host,
)
from gateway.settings.callers import (
    ApiKeySettings,
    CallerMethod,
    CallersSettings,
    ClaimMap,
    GrantSettings,
    JwtIssuer,
    KubernetesCallers,
    SaltedHash,
    compile_host_pattern,
    parse_salted_hash,
    parse_selector,
)
from gateway.settings.gateway import Settings
from gateway.settings.loading import ENV_PREFIX, load_settings, resolve_secret
from gateway.settings.process import LoggingSettings, PollerSettings, ServerSettings, StoreSettings
from gateway.settings.tenants import (
    IDENTITY_TYPES,
    AzureClientSecretIdentity,
    AzureWorkloadIdentity,
    DefaultIdentity,
    GuardrailSettings,
    IdentitySettings,
    OAuthM2MIdentity,
    PatIdentity,
    PodTokenFederation,
    QuotaSettings,
    ServiceAccountFederation,
    TenantDefaults,
    TenantPolicy,
    TenantsSettings,
)
from gateway.settings.upstreams import (
    DatabricksSettings,
    IdentityOptions,
    KubernetesSettings,
    WorkspaceSettings,
)

__all__ = [
    "ENV_PREFIX",
    "IDENTITY_TYPES",
    "NAMESPACE_RE",
    "OBJECT_NAME_RE",
    "ApiKeySettings",
    "AzureClientSecretIdentity",
    "AzureWorkloadIdentity",
    "CallerMethod",
    "CallersSettings",
    "ClaimMap",
    "DatabricksSettings",
    "DefaultIdentity",
    "GrantSettings",
    "GuardrailSettings",
    "IdentityOptions",
    "IdentitySettings",
    "JwtIssuer",
    "KubernetesCallers",
    "KubernetesSettings",
    "LoggingSettings",
    "OAuthM2MIdentity",
    "PatIdentity",
    "PodTokenFederation",
    "PollerSettings",
    "QuotaSettings",
    "SaltedHash",
    "SecretRef",
    "ServerSettings",
    "ServiceAccountFederation",
    "Settings",
    "StoreSettings",
    "TenantDefaults",
    "TenantPolicy",
    "TenantsSettings",
    "WorkspaceSettings",
    "compile_host_pattern",
    "is_loopback_host",
    "load_settings",
    "normalize_authority",
    "normalize_host",
    "parse_salted_hash",
    "parse_selector",
    "resolve_secret",
]
