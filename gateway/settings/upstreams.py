"""What lakegate talks to, and how: the workspaces allow-list, Databricks, the Kubernetes API,
and how identities are found there."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.settings.base import (
    NAMESPACE_RE,
    OBJECT_NAME_RE,
    Frozen,
    check_api_server,
    check_scopes,
    normalize_authority,
    normalize_host,
)

_AZURE_RESOURCE_ID_RE = re.compile(
    r"^/subscriptions/[^/\s]+/resourceGroups/[^/\s]+/providers/Microsoft\.Databricks/"
    r"workspaces/[^/\s]+\Z",
    re.IGNORECASE,
)


class WorkspaceSettings(Frozen):
    host: str
    api_version: Literal["2.1", "2.2"] = "2.2"
    # A cap on concurrent calls lakegate makes to this workspace, below Databricks' own limits.
    max_concurrent_requests: int = Field(default=32, ge=1, le=1000)
    # A cap on active runs (SUBMITTING to TERMINATING) across all namespaces on this
    # workspace, below Databricks' own 1,000; queued runs wait for it. None: no cap.
    max_active_runs: int | None = Field(default=None, ge=1, le=1000)
    # Azure: the workspace's ARM resource id. With it, Jobs calls made as an Entra service
    # principal carry X-Databricks-Azure-Workspace-Resource-Id and a management token, which
    # let a principal with a role on the workspace resource in before it is a workspace user.
    azure_resource_id: str | None = None
    # Request budgets for runs/submit and runs/get on this workspace, shared fairly by the
    # namespaces (gateway.databricks.budgets), below Databricks' own rate limits. None: none.
    submit_requests_per_second: float | None = Field(default=None, gt=0, le=1000)
    get_requests_per_second: float | None = Field(default=None, gt=0, le=1000)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_host(value)

    @field_validator("azure_resource_id")
    @classmethod
    def _resource_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _AZURE_RESOURCE_ID_RE.match(value):
            raise ValueError(
                f"'{value}' is not an Azure Databricks resource id like /subscriptions/<id>/"
                "resourceGroups/<group>/providers/Microsoft.Databricks/workspaces/<name>"
            )
        return value


class DatabricksSettings(Frozen):
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long one logical call (with its retries) may take before it is given up.
    retry_deadline_seconds: float = Field(default=60.0, gt=0)
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=10.0, gt=0)


class IdentityOptions(Frozen):
    """How namespaces without an explicit identity are resolved, and token handling."""

    # Labelled ServiceAccounts and the well-known Secrets (databricks-oauth, databricks-token).
    discover_from_kubernetes: bool = True
    # Unconfigured namespaces run as the gateway's own identity only when this is true.
    default_for_unconfigured: bool = False
    # The gateway pod's projected token, for federation with the pod's own identity.
    pod_token_file: str | None = None
    # Audience of minted ServiceAccount tokens when the ServiceAccount names none.
    default_audience: str | None = None
    # TokenRequest's usual lifetime (Flyte's too): an hour.
    service_account_token_seconds: int = Field(default=3600, ge=600, le=86_400)
    # How long a namespace's resolved identity is trusted before Kubernetes is asked again.
    resolution_ttl_seconds: float = Field(default=30.0, gt=0)
    token_cache_size: int = Field(default=10_000, ge=10)
    azure_authority: str = "https://login.microsoftonline.com/"
    # The Azure Resource Manager resource of that cloud, for management tokens.
    azure_management_resource: str = "https://management.core.windows.net/"
    # OAuth scopes asked of a workspace's token endpoint by identities that name none of
    # their own (discovered ones, the gateway's default); the SDKs' default is all-apis.
    oauth_scopes: tuple[str, ...] = ("all-apis",)
    # The Secrets discovery looks for in a namespace, in order; each is an OAuth M2M or PAT
    # identity by the keys it holds (client_id and client_secret, or token).
    secret_names: tuple[str, ...] = ("databricks-oauth", "databricks-token")

    @field_validator("oauth_scopes")
    @classmethod
    def _scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_scopes(value)

    @field_validator("secret_names")
    @classmethod
    def _secret_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one Secret, or set discover_from_kubernetes: false")
        for name in value:
            if not OBJECT_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not a Kubernetes object name")
        if len(set(value)) != len(value):
            raise ValueError("a Secret is named twice")
        return value

    @field_validator("azure_authority", "azure_management_resource")
    @classmethod
    def _authority(cls, value: str) -> str:
        return normalize_authority(value)


class KubernetesSettings(Frozen):
    """How lakegate reaches the Kubernetes API; ``off`` disables discovery and TokenReview."""

    mode: Literal["off", "in-cluster", "kubeconfig", "explicit"] = "off"
    host: str | None = None
    token_file: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    # Namespaces to watch for labelled ServiceAccounts; empty watches all of them.
    namespaces: tuple[str, ...] = ()
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    watch_timeout_seconds: int = Field(default=300, ge=1)
    resync_seconds: float = Field(default=600.0, gt=0)
    fallback_ttl_seconds: float = Field(default=30.0, gt=0)
    # /readyz fails once every request to the API has failed for this long.
    unreachable_after_seconds: float = Field(default=60.0, gt=0)

    @field_validator("host")
    @classmethod
    def _api_server(cls, value: str | None) -> str | None:
        return None if value is None else check_api_server(value)

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not NAMESPACE_RE.match(name):
                raise ValueError(f"'{name}' is not a Kubernetes namespace name")
        return value

    @model_validator(mode="after")
    def _complete(self) -> KubernetesSettings:
        if self.mode == "explicit" and not (self.host and self.token_file):
            raise ValueError("mode 'explicit' needs 'host' and 'token_file'")
        if self.mode == "kubeconfig" and not self.kubeconfig:
            raise ValueError("mode 'kubeconfig' needs 'kubeconfig' (a file path)")
        return self
