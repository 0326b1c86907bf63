"""What lakegate talks to, and how: the workspaces allow-list, Databricks, the Kubernetes API,
and how identities are found there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.settings.base import (
    NAMESPACE_RE,
    Frozen,
    check_api_server,
    normalize_authority,
    normalize_host,
)


class WorkspaceSettings(Frozen):
    host: str
    api_version: Literal["2.1", "2.2"] = "2.2"
    # A cap on concurrent calls lakegate makes to this workspace, below Databricks' own limits.
    max_concurrent_requests: int = Field(default=32, ge=1, le=1000)
    # A cap on active runs (SUBMITTING to TERMINATING) across all namespaces on this
    # workspace, below Databricks' own 1,000; queued runs wait for it. None: no cap.
    max_active_runs: int | None = Field(default=None, ge=1, le=1000)
    # Request budgets for runs/submit and runs/get on this workspace, shared fairly by the
    # namespaces (gateway.databricks.budgets), below Databricks' own rate limits. None: none.
    submit_requests_per_second: float | None = Field(default=None, gt=0, le=1000)
    get_requests_per_second: float | None = Field(default=None, gt=0, le=1000)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_host(value)


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
    service_account_token_seconds: int = Field(default=600, ge=600, le=86_400)
    # How long a namespace's resolved identity is trusted before Kubernetes is asked again.
    resolution_ttl_seconds: float = Field(default=30.0, gt=0)
    token_cache_size: int = Field(default=10_000, ge=10)
    azure_authority: str = "https://login.microsoftonline.com/"

    @field_validator("azure_authority")
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
