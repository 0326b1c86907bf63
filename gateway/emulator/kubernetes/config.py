"""The fake Kubernetes API's configuration: frozen pydantic models, loaded from YAML.

Every field has a default, so ``KubeEmulatorConfig()`` is a working, empty cluster (though
nobody may call it until ``callers`` names a token). ``load_config(path)`` raises
``ConfigError`` naming the file and the key of every problem.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from gateway.errors import ConfigError

# RFC 1123 label (namespaces) and subdomain (ServiceAccount and Secret names).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def is_qualified_name(key: str) -> bool:
    """Whether ``key`` is a valid label key: an optional DNS-subdomain prefix, then a name."""
    prefix, sep, name = key.rpartition("/")
    if sep and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


def is_label_value(value: str) -> bool:
    return value == "" or bool(_LABEL_NAME.match(value))


def check_object_name(name: str) -> str:
    if not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"{name!r} is not a valid object name (RFC 1123 subdomain)")
    return name


def check_namespace(name: str) -> str:
    if not _DNS_LABEL.match(name):
        raise ValueError(f"{name!r} is not a valid namespace name (RFC 1123 label)")
    return name


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not is_qualified_name(key):
            raise ValueError(f"label key {key!r} is not a qualified name")
        if not is_label_value(value):
            raise ValueError(f"label value {value!r} of {key!r} is not a valid label value")
    return labels


Labels = Annotated[dict[str, str], AfterValidator(check_labels)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallerConfig(_Frozen):
    """A static bearer token the API accepts, and who it stands for."""

    token: SecretStr
    username: str = "system:serviceaccount:lakegate-system:lakegate"
    uid: str = ""
    groups: tuple[str, ...] = (
        "system:serviceaccounts",
        "system:serviceaccounts:lakegate-system",
        "system:authenticated",
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        # aiohttp refuses header values with control characters; so would the real client.
        if not raw or any(ch.isspace() for ch in raw):
            raise ValueError("a caller token must be non-empty and contain no whitespace")
        return value


class ServiceAccountConfig(_Frozen):
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # A fixed UID makes tokens predictable across restarts; by default a random UUID.
    uid: str | None = None


class SecretConfig(_Frozen):
    """A Secret; ``string_data`` holds plain values, ``data`` base64 ones (as in the API)."""

    type: str = "Opaque"
    string_data: dict[str, str] = Field(default_factory=dict)
    data: dict[str, str] = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)

    @field_validator("string_data", "data")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _SECRET_KEY.match(key):
                raise ValueError(f"secret key {key!r} must consist of alphanumerics, '-', '_', '.'")
        return value

    @field_validator("data")
    @classmethod
    def _base64(cls, value: dict[str, str]) -> dict[str, str]:
        for key, encoded in value.items():
            try:
                base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data[{key!r}] is not standard base64") from exc
        return value

    def decoded(self) -> dict[str, bytes]:
        """Every value as bytes; ``string_data`` wins over ``data``, as on the real server."""
        values = {k: base64.b64decode(v) for k, v in self.data.items()}
        values.update({k: v.encode() for k, v in self.string_data.items()})
        return values


class NamespaceConfig(_Frozen):
    labels: Labels = Field(default_factory=dict)
    service_accounts: dict[str, ServiceAccountConfig] = Field(default_factory=dict)
    secrets: dict[str, SecretConfig] = Field(default_factory=dict)

    @field_validator("service_accounts", "secrets")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            check_object_name(name)
        return value


class WatchConfig(_Frozen):
    # ServiceAccount events kept for resuming watches; a watch from before the oldest kept
    # one gets 410 Expired. Small in tests, so "too old" is reachable.
    history_size: int = Field(default=1000, ge=1)
    # Periodic BOOKMARKs to watches that allow them; None sends them only on admin request.
    bookmark_interval_seconds: float | None = Field(default=60.0, gt=0)
    # How long a watch without timeoutSeconds lasts (the real server picks 1800-3600 s).
    default_timeout_seconds: float = Field(default=1800.0, gt=0)


class TokenConfig(_Frozen):
    default_expiration_seconds: int = Field(default=3600, ge=600)
    # --service-account-max-token-expiration: longer requests are shortened, with a Warning.
    max_expiration_seconds: int | None = Field(default=None, ge=600)
    key_type: Literal["RSA", "EC"] = "RSA"
    rsa_key_bits: int = Field(default=2048, ge=2048)
    # PEM of the first signing key; ``load_config`` fills it from ``signing_key_file``. Without
    # one a key is generated at start.
    signing_key_pem: SecretStr | None = None
    # go-jose's default leeway, which the apiserver's expiry check inherits.
    leeway_seconds: int = Field(default=60, ge=0)


class KubeEmulatorConfig(_Frozen):
    # The tokens' ``iss``; by default the server's own URL, so that a federation client can
    # fetch <iss>/.well-known/openid-configuration from it over plain http.
    issuer: str | None = None
    # --api-audiences; by default [issuer].
    api_audiences: tuple[str, ...] = ()
    # Where discovery says the JWKS is; by default <server URL>/openid/v1/jwks.
    jwks_uri: str | None = None
    callers: tuple[CallerConfig, ...] = ()
    # Whether ServiceAccount tokens this server minted also authenticate API callers.
    accept_service_account_tokens: bool = True
    # Whether the issuer discovery documents answer callers without a token (clusters that
    # bind system:service-account-issuer-discovery to system:unauthenticated do).
    anonymous_discovery: bool = True
    namespaces: dict[str, NamespaceConfig] = Field(default_factory=dict)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    tokens: TokenConfig = Field(default_factory=TokenConfig)

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: dict[str, NamespaceConfig]) -> dict[str, NamespaceConfig]:
        for name in value:
            check_namespace(name)
        return value


def _read_key_file(path: str, raw: dict[str, Any]) -> None:
    tokens = raw.get("tokens")
    if not isinstance(tokens, dict) or "signing_key_file" not in tokens:
        return
    key_file = Path(path).parent / str(tokens.pop("signing_key_file"))
    try:
        tokens["signing_key_pem"] = key_file.read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"{path}: tokens.signing_key_file: cannot read {key_file}: {exc.strerror}"
        raise ConfigError([problem]) from exc


def load_config(path: str | None) -> KubeEmulatorConfig:
    """The config in the YAML file at ``path``; the defaults when ``path`` is None.

    ``tokens.signing_key_file`` (relative to the config file) is read here, before any event
    loop runs, into ``tokens.signing_key_pem``.
    """
    if path is None:
        return KubeEmulatorConfig()
    try:
        raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: is not valid YAML: {exc}"]) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    _read_key_file(path, raw)
    try:
        return KubeEmulatorConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(problems) from exc
