"""The workspace token endpoint, ``POST /oidc/v1/token``: both grants on one path.

client_credentials authenticates a service principal with an OAuth secret (HTTP Basic, or
form fields when ``accept_client_secret_post``); token exchange (RFC 8693) trades a JWT that
satisfies a federation policy. Error answers are RFC 6749 JSON: 401 ``invalid_client`` for a
client that does not authenticate, 400 ``invalid_request``/``unsupported_grant_type`` for a
malformed request, ``invalid_grant`` (status configurable) for a JWT no policy accepts.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.identity_config import IdentityConfig, Principal
from gateway.emulator.databricks.identity_federation import FederationVerifier, OAuthError
from gateway.emulator.databricks.identity_registry import Registry
from gateway.logs import get_logger

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"
DEFAULT_SCOPE = "all-apis"

_GRANT_LABELS = {
    GRANT_CLIENT_CREDENTIALS: "client_credentials",
    GRANT_TOKEN_EXCHANGE: "token_exchange",
}
_BAD_CLIENT = "Client authentication failed"

log = get_logger(__name__)


@dataclass
class IdentityStats:
    """Counters the admin API and tests read; principals are keyed by name."""

    token_requests_by_grant: Counter[str] = field(default_factory=Counter)
    token_requests_by_principal: Counter[str] = field(default_factory=Counter)
    token_errors: Counter[str] = field(default_factory=Counter)
    tokens_issued_by_principal: Counter[str] = field(default_factory=Counter)
    auth_failures_by_reason: Counter[str] = field(default_factory=Counter)
    authenticated_by_principal: Counter[str] = field(default_factory=Counter)
    # The scope each grant asked for, as sent (normalised whitespace; "" when it sent none),
    # by grant type: what a client asks for is the test's subject, not what is issued.
    token_requests_by_scope: Counter[tuple[str, str]] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_requests": {
                "total": self.token_requests_by_grant.total(),
                "by_grant_type": dict(self.token_requests_by_grant),
                "by_principal": dict(self.token_requests_by_principal),
                "by_scope": _by_scope(self.token_requests_by_scope),
                "errors": dict(self.token_errors),
            },
            "tokens_issued": {
                "total": self.tokens_issued_by_principal.total(),
                "by_principal": dict(self.tokens_issued_by_principal),
            },
            "auth_failures": {
                "total": self.auth_failures_by_reason.total(),
                "by_reason": dict(self.auth_failures_by_reason),
            },
            "authenticated_requests": {
                "total": self.authenticated_by_principal.total(),
                "by_principal": dict(self.authenticated_by_principal),
            },
        }


def _by_scope(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """``{grant: {scope: requests}}``; a grant that sent no scope is counted under ""."""
    out: dict[str, dict[str, int]] = {}
    for (grant, scope), n in sorted(counts.items()):
        out.setdefault(grant, {})[scope] = n
    return out


@dataclass(frozen=True)
class _Client:
    client_id: str
    secret: str | None


@dataclass
class _Attempt:
    """What one token request has established so far, for its log line and counters."""

    grant: str
    principal: Principal | None = None


class TokenEndpoint:
    def __init__(
        self,
        config: IdentityConfig,
        clock: Clock,
        registry: Registry,
        verifier: FederationVerifier,
        stats: IdentityStats,
    ) -> None:
        self._config = config
        self._clock = clock
        self._registry = registry
        self._verifier = verifier
        self._stats = stats

    async def handle(self, request: web.Request) -> web.Response:
        attempt = _Attempt(grant="missing")
        try:
            form = await _form(request)
            grant = form.get("grant_type", "")
            attempt.grant = _GRANT_LABELS.get(grant, "unsupported" if grant else "missing")
            self._stats.token_requests_by_grant[attempt.grant] += 1
            scope = " ".join(form.get("scope", "").split())
            self._stats.token_requests_by_scope[(attempt.grant, scope)] += 1
            client = self._client(request, form)
            if grant == GRANT_CLIENT_CREDENTIALS:
                principal, expires_in = self._client_credentials(client, attempt), None
            elif grant == GRANT_TOKEN_EXCHANGE:
                principal, expires_in = await self._token_exchange(form, client, attempt)
            elif not grant:
                raise OAuthError(400, "invalid_request", "grant_type is missing")
            else:
                raise OAuthError(
                    400, "unsupported_grant_type", f"grant_type {grant} is not supported"
                )
        except OAuthError as exc:
            self._stats.token_errors[exc.error] += 1
            log.info(
                "emulator_token_refused",
                grant_type=attempt.grant,
                principal=attempt.principal.name if attempt.principal else None,
                error=exc.error,
                error_description=exc.description,
            )
            return exc.response()
        return self._issue(principal, form, attempt.grant, expires_in)

    def _issue(
        self,
        principal: Principal,
        form: Mapping[str, str],
        grant: str,
        expires_in: int | None,
    ) -> web.Response:
        now = self._clock.now()
        scope = " ".join(form.get("scope", "").split()) or DEFAULT_SCOPE
        ttl = self._config.access_token_ttl_seconds
        lifetime = ttl if expires_in is None else min(ttl, expires_in)
        token = self._registry.issue(principal, now=now, expires_at=now + lifetime, scope=scope)
        self._stats.tokens_issued_by_principal[principal.name] += 1
        log.info(
            "emulator_token_issued", grant_type=grant, principal=principal.name, expires_in=lifetime
        )
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _client(self, request: web.Request, form: Mapping[str, str]) -> _Client | None:
        """The client the request names, from HTTP Basic or (if allowed) the form."""
        basic = _basic_credentials(request.headers.get("Authorization"))
        form_id, form_secret = form.get("client_id"), form.get("client_secret")
        if form_secret is not None and not self._config.accept_client_secret_post:
            raise OAuthError(
                401, "invalid_client", "client_secret_post is not accepted; use HTTP Basic"
            )
        if basic is not None:
            if form_secret is not None:
                raise OAuthError(400, "invalid_request", "use one client authentication method")
            if form_id is not None and form_id != basic.client_id:
                raise OAuthError(
                    400, "invalid_request", "client_id differs from the Basic credentials"
                )
            return basic
        if form_id is not None:
            return _Client(form_id, form_secret)
        if form_secret is not None:
            raise OAuthError(400, "invalid_request", "client_secret without client_id")
        return None

    def _authenticated(self, client: _Client, attempt: _Attempt) -> Principal:
        attempt.principal = self._registry.service_principal(client.client_id)
        if attempt.principal is not None:
            self._stats.token_requests_by_principal[attempt.principal.name] += 1
        if client.secret is None:
            raise OAuthError(401, "invalid_client", _BAD_CLIENT)
        principal = self._registry.check_client(client.client_id, client.secret)
        if principal is None:
            raise OAuthError(401, "invalid_client", _BAD_CLIENT)
        return principal

    def _client_credentials(self, client: _Client | None, attempt: _Attempt) -> Principal:
        if client is None:
            raise OAuthError(401, "invalid_client", _BAD_CLIENT)
        return self._authenticated(client, attempt)

    async def _token_exchange(
        self, form: Mapping[str, str], client: _Client | None, attempt: _Attempt
    ) -> tuple[Principal, int]:
        subject_token = form.get("subject_token")
        if not subject_token:
            raise OAuthError(400, "invalid_request", "subject_token is missing")
        if form.get("subject_token_type") != TOKEN_TYPE_JWT:
            raise OAuthError(400, "invalid_request", f"subject_token_type must be {TOKEN_TYPE_JWT}")
        if client is None:
            return await self._account_exchange(subject_token, attempt)
        if client.secret is not None:
            principal = self._authenticated(client, attempt)
        else:
            found = self._registry.service_principal(client.client_id)
            if found is None:
                raise OAuthError(401, "invalid_client", f"unknown client_id {client.client_id}")
            principal = attempt.principal = found
            self._stats.token_requests_by_principal[principal.name] += 1
        policies = self._registry.policies_for(client.client_id)
        owner = f"service principal {client.client_id}"
        if not policies:
            raise self._verifier_error(f"{owner} has no federation policy")
        verified = await self._verifier.verify(subject_token, policies, owner=owner)
        return principal, self._remaining(verified.claims)

    async def _account_exchange(
        self, subject_token: str, attempt: _Attempt
    ) -> tuple[Principal, int]:
        policies = self._registry.account_policies
        if not policies:
            raise self._verifier_error("the account has no federation policy; send client_id")
        verified = await self._verifier.verify(subject_token, policies, owner="the account")
        claim = verified.policy.subject_claim
        subject = str(verified.claims[claim])
        principal = self._registry.federated_subject(subject)
        if principal is None:
            raise self._verifier_error(f"no user or service principal matches {claim} {subject!r}")
        attempt.principal = principal
        self._stats.token_requests_by_principal[principal.name] += 1
        return principal, self._remaining(verified.claims)

    def _remaining(self, claims: dict[str, Any]) -> int:
        # A JWT accepted inside the leeway may have expired already; a token that is dead on
        # arrival is useless, so it gets one second.
        return max(1, int(float(claims["exp"]) - self._clock.now()))

    def _verifier_error(self, description: str) -> OAuthError:
        return OAuthError(self._config.invalid_grant_status, "invalid_grant", description)


async def _form(request: web.Request) -> Mapping[str, str]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            400, "invalid_request", "the body must be application/x-www-form-urlencoded"
        )
    fields: dict[str, str] = {}
    for key, value in (await request.post()).items():
        if key in fields:
            raise OAuthError(400, "invalid_request", f"{key} is repeated")
        # Only text fields arrive with this content type; the check narrows the type.
        if isinstance(value, str):
            fields[key] = value
    return fields


def _basic_credentials(header: str | None) -> _Client | None:
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(401, "invalid_client", "malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise OAuthError(401, "invalid_client", "malformed Basic credentials")
    return _Client(client_id, secret)
