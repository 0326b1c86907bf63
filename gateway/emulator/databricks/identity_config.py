"""The ``identity:`` section of the emulator's configuration, and the principal value type.

Credentials are ``SecretStr`` so that printing a config (or a validation error) never shows
them; read them with ``get_secret_value()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to."""

    name: str  # user e-mail or service-principal display name
    application_id: str | None  # SP application (client) id; None for users


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _parse_jwks_json(value: Any) -> Any:
    # Databricks' API takes jwks_json as a JSON string; YAML authors will rather write a map.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"jwks_json is not JSON: {exc.msg}") from exc
    if value is not None and not (isinstance(value, dict) and isinstance(value.get("keys"), list)):
        raise ValueError('jwks_json must be a JWK set: {"keys": [...]}')
    return value


class AccountFederationPolicy(_Frozen):
    """An account-wide federation policy: any principal named by the subject claim."""

    issuer: str
    # None means "the account id", resolved by the service; an explicit list is kept as is.
    audiences: tuple[str, ...] | None = None
    subject_claim: str = "sub"
    jwks_uri: str | None = None
    jwks_json: dict[str, Any] | None = None

    _check_jwks = field_validator("jwks_json", mode="before")(_parse_jwks_json)

    @model_validator(mode="after")
    def _one_key_source(self) -> AccountFederationPolicy:
        if self.jwks_uri is not None and self.jwks_json is not None:
            raise ValueError("set at most one of jwks_uri and jwks_json")
        if self.audiences is not None and not self.audiences:
            raise ValueError("audiences, when given, must not be empty")
        return self


class FederationPolicy(AccountFederationPolicy):
    """A service principal's federation policy: one exact subject."""

    subject: str


class UserConfig(_Frozen):
    name: str = Field(min_length=1)
    pats: tuple[SecretStr, ...] = ()


class ServicePrincipalConfig(_Frozen):
    name: str = Field(min_length=1)
    application_id: str = Field(min_length=1)
    secrets: tuple[SecretStr, ...] = ()
    pats: tuple[SecretStr, ...] = ()
    federation_policies: tuple[FederationPolicy, ...] = ()


class PrincipalsUpdate(_Frozen):
    """Principals, credentials and policies to add at runtime (admin API).

    An entry naming an existing user (by name) or service principal (by application id) adds
    its PATs, secrets and policies to that principal; any other entry creates one.
    """

    users: tuple[UserConfig, ...] = ()
    service_principals: tuple[ServicePrincipalConfig, ...] = ()
    federation_policies: tuple[AccountFederationPolicy, ...] = ()


class IdentityConfig(PrincipalsUpdate):
    """Who exists in the emulated workspace, and how its OIDC endpoints behave."""

    # The default audience of every federation policy that names none, as in Databricks.
    account_id: str = "00000000-0000-4000-8000-00000000acc7"
    access_token_ttl_seconds: int = Field(default=3600, gt=0)
    # Whether Databricks takes client_id/client_secret in the form is unverified; SDKs use
    # Basic, so turning this off checks that a client does too.
    accept_client_secret_post: bool = True
    # Real workspaces answer a request without a credential with 401 UNAUTHENTICATED; some
    # paths give the same 403 as a bad token. Both are seen, so the choice is the operator's.
    missing_credential_status: Literal[401, 403] = 401
    # RFC 6749 says 400 for invalid_grant; what Databricks sends for a policy mismatch is
    # unverified, and a client should not depend on it.
    invalid_grant_status: Literal[400, 401] = 400
    # Clock skew allowed on a subject JWT's exp and nbf.
    jwt_leeway_seconds: int = Field(default=30, ge=0)
    # How long fetched discovery documents and JWKS are trusted (an unknown kid refetches).
    jwks_cache_seconds: float = Field(default=300.0, ge=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _unique(self) -> IdentityConfig:
        _check_unique([u.name for u in self.users], "user name")
        _check_unique([sp.application_id for sp in self.service_principals], "application_id")
        pats = [p.get_secret_value() for u in self.users for p in u.pats]
        pats += [p.get_secret_value() for sp in self.service_principals for p in sp.pats]
        if len(set(pats)) != len(pats):
            raise ValueError("a PAT is listed twice")
        return self


def _check_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what}: {value}")
        seen.add(value)
