"""Identity of the emulated Databricks workspace: who a bearer token is, and where tokens come from.

The server's middleware calls ``IdentityService.authenticate`` on every ``/api/`` request and
answers ``AuthFailure`` with its status and body. ``routes()`` serve the workspace's OIDC
discovery document, its token endpoint (client credentials and token exchange, see
``identity_oauth``), the JWKS of the access tokens it issues, and an unauthenticated admin API
under ``/emulator/identity/`` for tests and the demo:

    POST /emulator/identity/revoke         {"token": t} | {"principal": p, "include_pats": bool}
    POST /emulator/identity/principals     {"users": [...], "service_principals": [...],
                                            "federation_policies": [...]}  (config schema)
    POST /emulator/identity/rotate-secret  {"application_id": a, "new_secret": s}
    GET  /emulator/identity/stats

Wire shapes follow shared/reference/databricks.md: a bad, unknown, expired or revoked token
gets the real 403 ``{"error_code": 403, "message": "Invalid access token."}``; a request with
no credential (or a non-Bearer one) gets 401 with the message a real workspace sends (or the
403, per ``missing_credential_status``). Tokens are never logged; principals are, by name.

Tokens issued elsewhere (the emulated Entra ID, ``entra``) are accepted through a
``TokenSource`` added with ``add_token_source``: asked after the workspace's own tokens, it
names the principal, refuses the token with an ``AuthFailure``, or does not know it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.identity_config import (
    AccountFederationPolicy,
    FederationPolicy,
    IdentityConfig,
    Principal,
    PrincipalsUpdate,
    ServicePrincipalConfig,
    UserConfig,
)
from gateway.emulator.databricks.identity_federation import DocumentCache, FederationVerifier
from gateway.emulator.databricks.identity_oauth import (
    GRANT_TOKEN_EXCHANGE,
    IdentityStats,
    TokenEndpoint,
)
from gateway.emulator.databricks.identity_registry import Registry, RegistryError
from gateway.logs import get_logger

__all__ = [
    "AccountFederationPolicy",
    "AuthFailure",
    "FederationPolicy",
    "IdentityConfig",
    "IdentityService",
    "Principal",
    "PrincipalsUpdate",
    "ServicePrincipalConfig",
    "TokenSource",
    "UserConfig",
]

INVALID_TOKEN_BODY: dict[str, Any] = {"error_code": 403, "message": "Invalid access token."}
# Seen on real workspaces (integer error_code included) when no usable credential is sent.
MISSING_CREDENTIAL_BODY: dict[str, Any] = {
    "error_code": 401,
    "message": "Credential was not sent or was of an unsupported type for this API.",
}

log = get_logger(__name__)

_M = TypeVar("_M", bound=BaseModel)


class AuthFailure(Exception):
    """A request the workspace refuses to authenticate; ``body`` is the exact JSON answer.

    ``reason`` is the label it is counted under in the stats.
    """

    def __init__(self, status: int, body: dict[str, Any], *, reason: str = "invalid_token") -> None:
        super().__init__(body.get("message", "authentication failed"))
        self.status = status
        self.body = body
        self.reason = reason


class TokenSource(Protocol):
    """Bearer tokens another issuer makes that the workspace accepts too."""

    def authenticate(self, token: str, now: float) -> Principal | None:
        """The principal ``token`` proves; None if this source never issued it.

        Raises ``AuthFailure`` for a token it issued but the workspace refuses.
        """
        ...

    def revoke_token(self, token: str) -> bool: ...

    def revoke_principal(self, principal: Principal) -> int: ...

    def stats(self) -> dict[str, Any]: ...


class _Admin(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RevokeRequest(_Admin):
    token: SecretStr | None = None
    principal: str | None = None
    include_pats: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> RevokeRequest:
        if (self.token is None) == (self.principal is None):
            raise ValueError("give exactly one of token and principal")
        return self


class RotateSecretRequest(_Admin):
    application_id: str
    new_secret: SecretStr


class IdentityService:
    """Principals, credentials and the OIDC endpoints of one emulated workspace."""

    def __init__(self, config: IdentityConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._registry = Registry()
        self._registry.add(config)
        self._stats = IdentityStats()
        grant_status = config.invalid_grant_status
        self._documents = DocumentCache(
            clock,
            ttl=config.jwks_cache_seconds,
            timeout=config.http_timeout_seconds,
            error_status=grant_status,
        )
        verifier = FederationVerifier(
            clock,
            self._documents,
            account_id=config.account_id,
            leeway=config.jwt_leeway_seconds,
            error_status=grant_status,
        )
        self._token_endpoint = TokenEndpoint(config, clock, self._registry, verifier, self._stats)
        self._sources: dict[str, TokenSource] = {}

    @property
    def config(self) -> IdentityConfig:
        return self._config

    @property
    def documents(self) -> DocumentCache:
        """The cache of issuer documents, shared so every JWKS fetch uses one session."""
        return self._documents

    def add_token_source(self, name: str, source: TokenSource) -> None:
        """Accept the tokens ``source`` issued; its stats appear under ``name``."""
        self._sources[name] = source

    # -- the contract the server codes against ------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal an ``Authorization`` header proves, or ``AuthFailure``."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            self._stats.auth_failures_by_reason["missing_credential"] += 1
            if self._config.missing_credential_status == 403:
                raise AuthFailure(403, dict(INVALID_TOKEN_BODY))
            raise AuthFailure(401, dict(MISSING_CREDENTIAL_BODY))
        token = token.strip()
        principal = self._lookup(token, self._clock.now()) if token else None
        if principal is None:
            reason = "expired_token" if self._registry.expired(token) else "invalid_token"
            self._stats.auth_failures_by_reason[reason] += 1
            log.debug("emulator_auth_refused", reason=reason)
            raise AuthFailure(403, dict(INVALID_TOKEN_BODY))
        self._stats.authenticated_by_principal[principal.name] += 1
        return principal

    def _lookup(self, token: str, now: float) -> Principal | None:
        principal = self._registry.lookup(token, now)
        if principal is not None:
            return principal
        for source in self._sources.values():
            try:
                principal = source.authenticate(token, now)
            except AuthFailure as failure:
                self._stats.auth_failures_by_reason[failure.reason] += 1
                log.debug("emulator_auth_refused", reason=failure.reason)
                raise
            if principal is not None:
                return principal
        return None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/oidc/.well-known/oauth-authorization-server", self._discovery),
            web.post("/oidc/v1/token", self._token_endpoint.handle),
            web.get("/oidc/jwks.json", self._jwks),
            web.post("/emulator/identity/revoke", self._admin_revoke),
            web.post("/emulator/identity/principals", self._admin_principals),
            web.post("/emulator/identity/rotate-secret", self._admin_rotate_secret),
            web.get("/emulator/identity/stats", self._admin_stats),
        ]

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Open the one ClientSession used for JWKS and issuer discovery; close it after."""
        async with aiohttp.ClientSession() as session:
            self._documents.session = session
            try:
                yield
            finally:
                self._documents.session = None

    def stats(self) -> dict[str, Any]:
        return {
            **self._stats.as_dict(),
            "jwks_fetches": self._documents.fetches,
            "registry": self._registry.counts(),
            **{name: source.stats() for name, source in self._sources.items()},
        }

    # -- the same operations as the admin API, for in-process callers (fault injection) --

    def revoke_token(self, token: str) -> bool:
        """Revoke one issued token or PAT; True if it was known."""
        revoked = self._registry.revoke_token(token) or any(
            source.revoke_token(token) for source in self._sources.values()
        )
        log.info("emulator_token_revoked", known=revoked)
        return revoked

    def revoke_principal(self, principal: str, *, include_pats: bool = False) -> int:
        """Revoke every token issued to a principal (by name or application id), optionally
        its PATs; the number revoked. KeyError when no such principal exists."""
        found = self._registry.find(principal)
        if found is None:
            raise KeyError(principal)
        count = self._registry.revoke_principal(found, include_pats=include_pats)
        count += sum(source.revoke_principal(found) for source in self._sources.values())
        log.info("emulator_principal_revoked", principal=found.name, revoked=count)
        return count

    def rotate_secret(self, application_id: str, new_secret: str) -> Principal:
        """Replace every OAuth secret of a service principal; tokens already issued live on."""
        principal = self._registry.rotate_secret(application_id, new_secret)
        log.info("emulator_secret_rotated", principal=principal.name)
        return principal

    def add_principals(self, update: PrincipalsUpdate) -> None:
        self._registry.add(update)
        log.info(
            "emulator_principals_added",
            users=[u.name for u in update.users],
            service_principals=[sp.name for sp in update.service_principals],
            account_policies=len(update.federation_policies),
        )

    # -- handlers -----------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        base = str(request.url.origin())
        return web.json_response(
            {
                "issuer": f"{base}/oidc",
                "authorization_endpoint": f"{base}/oidc/v1/authorize",
                "token_endpoint": f"{base}/oidc/v1/token",
                "jwks_uri": f"{base}/oidc/jwks.json",
                "grant_types_supported": ["client_credentials", GRANT_TOKEN_EXCHANGE],
                "token_endpoint_auth_methods_supported": self._auth_methods(),
                "response_types_supported": ["code"],
                "scopes_supported": ["all-apis", "offline_access", "sql"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def _auth_methods(self) -> list[str]:
        if self._config.accept_client_secret_post:
            return ["client_secret_basic", "client_secret_post"]
        return ["client_secret_basic"]

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response(self._registry.public_jwks())

    async def _admin_revoke(self, request: web.Request) -> web.Response:
        body = await _parse(request, RevokeRequest)
        if body.token is not None:
            return web.json_response(
                {"revoked": int(self.revoke_token(body.token.get_secret_value()))}
            )
        assert body.principal is not None
        try:
            count = self.revoke_principal(body.principal, include_pats=body.include_pats)
        except KeyError:
            raise _admin_error(404, f"no principal {body.principal!r}") from None
        return web.json_response({"revoked": count})

    async def _admin_principals(self, request: web.Request) -> web.Response:
        update = await _parse(request, PrincipalsUpdate)
        try:
            self.add_principals(update)
        except RegistryError as exc:
            raise _admin_error(exc.status, str(exc)) from None
        return web.json_response(self._registry.counts())

    async def _admin_rotate_secret(self, request: web.Request) -> web.Response:
        body = await _parse(request, RotateSecretRequest)
        try:
            principal = self.rotate_secret(body.application_id, body.new_secret.get_secret_value())
        except RegistryError as exc:
            raise _admin_error(exc.status, str(exc)) from None
        return web.json_response({"application_id": body.application_id, "name": principal.name})

    async def _admin_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())


_ADMIN_ERRORS: dict[int, type[web.HTTPClientError]] = {
    400: web.HTTPBadRequest,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
}


async def _parse(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        # Inputs are left out: they may be the very secrets the request carries.
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise _admin_error(400, "invalid request body", errors=errors) from None


def _admin_error(status: int, message: str, **extra: Any) -> web.HTTPClientError:
    return _ADMIN_ERRORS[status](
        text=json.dumps({"error": message, **extra}), content_type="application/json"
    )
