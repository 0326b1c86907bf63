"""Typed, frozen settings: gateway.yaml, tenants.yaml, and environment overrides.

``load_settings(path)`` reads the gateway file, the tenants file it names (relative to itself),
applies ``LAKEGATE_<SECTION>__<KEY>`` environment overrides to the gateway file, validates the
whole, and raises ``ConfigError`` listing every problem as ``<file or env var>: <key>: <what>``.
Secrets are ``SecretStr`` and print as ``**********``.
"""

from gateway.settings.base import NAMESPACE_RE, OBJECT_NAME_RE, normalize_authority, normalize_host
from gateway.settings.callers import (
    ApiKeySettings,
    CallerMethod,
    CallersSettings,
    ClaimMap,
    GrantSettings,
    JwtIssuer,
    KubernetesCallers,
    SaltedHash,
    Selector,
    parse_salted_hash,
    parse_selector,
)
from gateway.settings.loading import ENV_PREFIX, load_settings, resolve_secret
from gateway.settings.root import Settings
from gateway.settings.sections import (
    DatabricksSettings,
    IdentityOptions,
    KubernetesSettings,
    LoggingSettings,
    PollerSettings,
    ServerSettings,
    StoreSettings,
    WorkspaceSettings,
)
from gateway.settings.tenants import (
    IDENTITY_TYPES,
    AzureClientSecretIdentity,
    AzureWorkloadIdentity,
    DefaultIdentity,
    IdentitySettings,
    OAuthM2MIdentity,
    PatIdentity,
    PodTokenFederation,
    QuotaSettings,
    SecretRef,
    ServiceAccountFederation,
    TenantDefaults,
    TenantPolicy,
    TenantsSettings,
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
    "Selector",
    "ServerSettings",
    "ServiceAccountFederation",
    "Settings",
    "StoreSettings",
    "TenantDefaults",
    "TenantPolicy",
    "TenantsSettings",
    "WorkspaceSettings",
    "load_settings",
    "normalize_authority",
    "normalize_host",
    "parse_salted_hash",
    "parse_selector",
    "resolve_secret",
]
