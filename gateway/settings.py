"""Typed, frozen settings: gateway.yaml, tenants.yaml, and environment overrides.

``load_settings(path)`` reads the gateway file, the tenants file it names (relative to itself),
applies ``LAKEGATE_<SECTION>__<KEY>`` environment overrides to the gateway file, validates the
whole, and raises ``ConfigError`` listing every problem as ``<file or env var>: <key>: <what>``.
Secrets are ``SecretStr`` and print as ``**********``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError

ENV_PREFIX = "LAKEGATE_"
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def normalize_host(value: str) -> str:
    """Workspace hosts are compared as ``scheme://netloc``; plain http only on loopback."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"'{value}' is not a URL like https://adb-123.4.azuredatabricks.net")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"'{value}' must be a bare host URL, without a path or query")
    if parts.scheme == "http" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
        raise ValueError(f"'{value}' uses plain http; only https is allowed off loopback")
    return f"{parts.scheme}://{parts.netloc.lower()}"


# --- gateway.yaml ---------------------------------------------------------------------------


class ServerSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class StoreSettings(_Frozen):
    backend: Literal["sqlite"] = "sqlite"
    sqlite_path: str = "lakegate.db"


class LoggingSettings(_Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class WorkspaceSettings(_Frozen):
    host: str
    api_version: Literal["2.1", "2.2"] = "2.2"
    # A cap on concurrent calls lakegate makes to this workspace, below Databricks' own limits.
    max_concurrent_requests: int = Field(default=32, ge=1, le=1000)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_host(value)


class DatabricksSettings(_Frozen):
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long one logical call (with its retries) may take before it is given up.
    retry_deadline_seconds: float = Field(default=60.0, gt=0)
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=10.0, gt=0)


class PollerSettings(_Frozen):
    min_interval_seconds: float = Field(default=5.0, gt=0)
    max_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=200, ge=1)
    submit_deadline_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PollerSettings:
        if self.max_interval_seconds < self.min_interval_seconds:
            raise ValueError("max_interval_seconds must not be below min_interval_seconds")
        return self


# --- tenants.yaml ---------------------------------------------------------------------------


class PatIdentity(_Frozen):
    """A personal access token, given inline or named by an environment variable."""

    type: Literal["pat"]
    token: SecretStr | None = None
    token_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PatIdentity:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("give exactly one of 'token' or 'token_env'")
        return self


class OAuthM2MIdentity(_Frozen):
    """A Databricks service principal's OAuth client id and secret."""

    type: Literal["oauth-m2m"]
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OAuthM2MIdentity:
        if (self.client_secret is None) == (self.client_secret_env is None):
            raise ValueError("give exactly one of 'client_secret' or 'client_secret_env'")
        return self


IdentitySettings = Annotated[PatIdentity | OAuthM2MIdentity, Field(discriminator="type")]


class QuotaSettings(_Frozen):
    max_active_runs: int = Field(default=20, ge=1)
    max_queued_runs: int = Field(default=200, ge=0)
    submissions_per_minute: float = Field(default=120.0, gt=0)
    burst: int = Field(default=20, ge=1)
    default_timeout_seconds: int = Field(default=0, ge=0)
    max_timeout_seconds: int = Field(default=0, ge=0)


class TenantPolicy(_Frozen):
    workspace: str | None = None
    identity: IdentitySettings | None = None
    quotas: QuotaSettings | None = None


class TenantDefaults(_Frozen):
    workspace: str | None = None
    quotas: QuotaSettings = QuotaSettings()


class TenantsSettings(_Frozen):
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

    def workspace_name(self, namespace: str) -> str | None:
        policy = self.namespaces.get(namespace)
        return (policy.workspace if policy else None) or self.defaults.workspace


class Settings(_Frozen):
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    databricks: DatabricksSettings = DatabricksSettings()
    poller: PollerSettings = PollerSettings()
    workspaces: dict[str, WorkspaceSettings] = Field(default_factory=dict)
    tenants_file: str | None = None
    tenants: TenantsSettings = TenantsSettings()

    @model_validator(mode="after")
    def _references(self) -> Settings:
        known = set(self.workspaces)
        wanted = [("tenants.defaults.workspace", self.tenants.defaults.workspace)] + [
            (f"tenants.namespaces.{ns}.workspace", p.workspace)
            for ns, p in self.tenants.namespaces.items()
        ]
        for key, name in wanted:
            if name is not None and name not in known:
                raise ValueError(
                    f"{key}: workspace '{name}' is not in the workspaces allow-list "
                    f"(known: {', '.join(sorted(known)) or 'none'})"
                )
        return self

    def workspace_for(self, namespace: str) -> WorkspaceSettings | None:
        name = self.tenants.workspace_name(namespace)
        return self.workspaces.get(name) if name else None

    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(w.host for w in self.workspaces.values())


# --- loading --------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}: not valid YAML{where}: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return data


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``LAKEGATE_SERVER__PORT=9000`` -> ``{"server": {"port": 9000}}``; values parse as YAML."""
    overrides: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not all(path):
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        try:
            node[path[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[path[-1]] = raw
        origin[path] = name
    return overrides, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(
    exc: ValidationError,
    source: dict[str, str],
    origin: Mapping[tuple[str, ...], str],
) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        # Discriminated unions add the tag to the path ('identity.pat.token'); people write
        # 'identity.token', so drop it.
        loc = tuple(p for p in loc if p not in ("pat", "oauth-m2m"))
        env_name = next((v for k, v in origin.items() if loc[: len(k)] == k), None)
        if env_name:
            where = f"environment {env_name}"
        elif loc and loc[0] == "tenants":
            where = source["tenants"]
            loc = loc[1:]
        else:
            where = source["gateway"]
        key = ".".join(loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {key}: {message}")
    return problems


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate; raise ``ConfigError`` naming every bad file and key."""
    environ = os.environ if environ is None else environ
    gateway_path = Path(path)
    data = _read_yaml(gateway_path)
    overrides, origin = _env_overrides(environ)
    data = _merge(data, overrides)
    source = {"gateway": str(gateway_path), "tenants": str(gateway_path)}
    tenants_file = data.get("tenants_file")
    if tenants_file is not None:
        if not isinstance(tenants_file, str):
            raise ConfigError([f"{gateway_path}: tenants_file: must be a path"])
        tenants_path = (gateway_path.parent / tenants_file).resolve()
        if "tenants" in data:
            raise ConfigError(
                [f"{gateway_path}: tenants: give tenants inline or in tenants_file, not both"]
            )
        data["tenants"] = _read_yaml(tenants_path)
        data["tenants_file"] = str(tenants_path)
        source["tenants"] = str(tenants_path)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, source, origin)) from exc


def resolve_secret(
    inline: SecretStr | None, env_name: str | None, environ: Mapping[str, str]
) -> str:
    """The secret's value from the settings or the named environment variable."""
    if inline is not None:
        return inline.get_secret_value()
    if env_name is None:
        raise ConfigError(["a secret has neither a value nor an environment variable"])
    value = environ.get(env_name)
    if not value:
        raise ConfigError([f"environment {env_name}: is not set or empty"])
    return value
