"""Microsoft Entra ID (Azure AD), as far as Azure Databricks identities need it.

Served on the workspace's own port, so a client's authority host (by default
``https://login.microsoftonline.com/``) is simply pointed at the emulator's URL:

    POST /{tenant}/oauth2/v2.0/token   client credentials, ``scope=<resource>/.default``
    POST /{tenant}/oauth2/token        the v1 form: ``resource=<resource>``, string expires_in
    GET  /aad/auth                     a workspace's tenant discovery: 302 to /{tenant}/...

A client authenticates with ``client_secret`` or with a federated credential: a JWT in
``client_assertion`` (workload identity) whose issuer, subject and audience match one of the
app's ``federated_credentials`` and whose signature verifies against the issuer's JWKS (found
by OIDC discovery, through the identity service's shared cache). Tokens are RS256 JWTs shaped
like Entra's v1 access tokens. Only those for the Azure Databricks resource open the
workspace API (``TokenSource``); management-resource tokens are issued but refused there, and
so is a token with less than ``workspace_min_remaining_seconds`` left.

Every app is registered as a workspace service principal (its name, application id = client
id), so a test needs no second entry and runs are attributed to the app. Tokens of every
configured tenant are accepted; the first tenant is the one ``/aad/auth`` names.

Requests are checked, and refused with Entra's AADSTS errors, by ``entra_credentials``.

Secrets, assertions and tokens are never logged; apps are, by name.
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.entra_config import EntraApp, EntraConfig
from gateway.emulator.databricks.entra_credentials import (
    ASSERTION_TYPE,
    AZURE_DEVOPS_RESOURCE,
    DATABRICKS_RESOURCE,
    MANAGEMENT_RESOURCE,
    NO_STORE,
    AssertionVerifier,
    EntraError,
    bad_request,
    check_assigned,
    check_secret,
    invalid_client,
    missing_parameter,
    requested_resource,
)
from gateway.emulator.databricks.identity import (
    INVALID_TOKEN_BODY,
    AuthFailure,
    IdentityService,
    Principal,
    PrincipalsUpdate,
    ServicePrincipalConfig,
)
from gateway.logs import get_logger

GRANT_CLIENT_CREDENTIALS = "client_credentials"

_RESOURCE_LABELS = {
    DATABRICKS_RESOURCE: "databricks",
    MANAGEMENT_RESOURCE: "management",
    AZURE_DEVOPS_RESOURCE: "azure-devops",
}
# Expired tokens are dropped on issuance every so many issues, as the workspace registry does.
_SWEEP_EVERY = 256

log = get_logger(__name__)


@dataclass(frozen=True)
class IssuedToken:
    """An Entra token as the services that verify it see it; ``expires_at`` in epoch s."""

    resource: str
    expires_at: float
    principal: Principal


@dataclass(frozen=True)
class _Issued:
    principal: Principal
    resource: str
    expires_at: float


@dataclass
class EntraStats:
    """Token endpoint counters; apps are keyed by name, errors by AADSTS code."""

    requests_by_tenant: Counter[str] = field(default_factory=Counter)
    requests_by_app: Counter[str] = field(default_factory=Counter)
    requests_by_grant: Counter[str] = field(default_factory=Counter)
    requests_by_endpoint: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    issued_by_app: Counter[str] = field(default_factory=Counter)
    issued_by_resource: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_requests": {
                "total": self.requests_by_endpoint.total(),
                "by_endpoint": dict(self.requests_by_endpoint),
                "by_tenant": dict(self.requests_by_tenant),
                "by_app": dict(self.requests_by_app),
                "by_grant": dict(self.requests_by_grant),
                "errors": dict(self.errors),
            },
            "tokens_issued": {
                "total": self.issued_by_app.total(),
                "by_app": dict(self.issued_by_app),
                "by_resource": dict(self.issued_by_resource),
            },
        }


@dataclass
class _Attempt:
    """What one token request has established, for its log line."""

    tenant: str
    client_id: str | None = None
    app: EntraApp | None = None
    grant: str | None = None


class EntraService:
    """The emulated Entra ID: its token endpoints, and the tokens the workspace accepts.

    Every app becomes a service principal of ``identity`` (same name, application id =
    client id), and ``identity.authenticate`` consults this service for bearer tokens it
    does not know itself.
    """

    def __init__(self, config: EntraConfig, clock: Clock, identity: IdentityService) -> None:
        self._config = config
        self._clock = clock
        self._assertions = AssertionVerifier(
            clock, identity.documents, skew=config.assertion_clock_skew_seconds
        )
        self._tenants = {t.tenant_id: {a.client_id: a for a in t.apps} for t in config.tenants}
        self._issued: dict[str, _Issued] = {}
        self._issues_since_sweep = 0
        # Only an emulator with tenants can issue tokens; the others skip the tens of
        # milliseconds RSA generation takes (every test starts an emulator).
        self._key = _new_key() if config.tenants else None
        self._kid = secrets.token_urlsafe(20)
        self._stats = EntraStats()
        apps = config.apps()
        if apps:
            sps = tuple(ServicePrincipalConfig(name=n, application_id=c) for c, n in apps.items())
            identity.add_principals(PrincipalsUpdate(service_principals=sps))
        identity.add_token_source("entra", self)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/{tenant}/oauth2/v2.0/token", partial(self._token, v1=False)),
            web.post("/{tenant}/oauth2/token", partial(self._token, v1=True)),
            web.get("/aad/auth", self._aad_auth),
        ]

    # -- TokenSource: what the workspace makes of the tokens issued here -------------------

    def authenticate(self, token: str, now: float) -> Principal | None:
        issued = self._issued.get(token)
        if issued is None:
            return None
        if issued.resource != DATABRICKS_RESOURCE:
            raise AuthFailure(403, dict(INVALID_TOKEN_BODY), reason="wrong_audience")
        left = issued.expires_at - now
        if left <= 0:
            raise AuthFailure(403, dict(INVALID_TOKEN_BODY), reason="expired_token")
        margin = self._config.workspace_min_remaining_seconds
        if left < margin:
            message = f"Token is expiring within {margin:g} seconds. (token expired)"
            raise AuthFailure(403, {"error_code": 403, "message": message}, reason="expiring_token")
        return issued.principal

    def issued(self, token: str) -> IssuedToken | None:
        """What Entra issued ``token`` as (resource, expiry, principal); None: not its own.

        For the services that take Entra tokens besides the workspace API (the Git
        credentials a run clones with)."""
        found = self._issued.get(token)
        if found is None:
            return None
        return IssuedToken(found.resource, found.expires_at, found.principal)

    def revoke_token(self, token: str) -> bool:
        return self._issued.pop(token, None) is not None

    def revoke_principal(self, principal: Principal) -> int:
        doomed = [t for t, i in self._issued.items() if i.principal == principal]
        for token in doomed:
            del self._issued[token]
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        return {**self._stats.as_dict(), "live_tokens": len(self._issued)}

    # -- the token endpoints ----------------------------------------------------------------

    async def _token(self, request: web.Request, *, v1: bool) -> web.Response:
        attempt = _Attempt(tenant=request.match_info["tenant"])
        self._stats.requests_by_endpoint["v1" if v1 else "v2"] += 1
        self._stats.requests_by_tenant[attempt.tenant] += 1
        try:
            form = await _form(request)
            app, requested = self._client(attempt, form, v1=v1)
            resource = requested_resource(requested, v1=v1, tenant=attempt.tenant)
            await self._authenticate_client(app, form, attempt)
            check_assigned(app, resource)
        except EntraError as exc:
            self._stats.errors[f"AADSTS{exc.code}"] += 1
            log.info(
                "emulator_entra_token_refused",
                tenant=attempt.tenant,
                client_id=attempt.client_id,
                app=attempt.app.name if attempt.app else None,
                grant=attempt.grant,
                error=exc.error,
                error_code=exc.code,
                error_description=exc.description,
            )
            return exc.response(request, self._clock.now())
        assert attempt.grant is not None
        token, lifetime, now = self._issue(app, attempt.tenant, resource, attempt.grant)
        if not v1:
            body: dict[str, Any] = {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        else:
            # The v1 endpoint sends its numbers as strings.
            body = {
                "token_type": "Bearer",
                "expires_in": str(lifetime),
                "ext_expires_in": str(lifetime),
                "expires_on": str(int(now) + lifetime),
                "not_before": str(int(now)),
                "resource": requested,
                "access_token": token,
            }
        return web.json_response(body, headers=NO_STORE)

    def _client(self, attempt: _Attempt, form: dict[str, str], *, v1: bool) -> tuple[EntraApp, str]:
        """The app the request is for, and the scope or resource it asks for, unchecked."""
        apps = self._tenants.get(attempt.tenant)
        if apps is None:
            raise bad_request(
                90002,
                f"Tenant '{attempt.tenant}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        if grant_type != GRANT_CLIENT_CREDENTIALS:
            raise bad_request(
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
                error="unsupported_grant_type",
            )
        attempt.client_id = form.get("client_id")
        if not attempt.client_id:
            raise missing_parameter("client_id")
        app = attempt.app = apps.get(attempt.client_id)
        if app is None:
            raise bad_request(
                700016,
                f"Application with identifier '{attempt.client_id}' was not found in the "
                f"directory '{attempt.tenant}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
                error="unauthorized_client",
            )
        self._stats.requests_by_app[app.name] += 1
        name = "resource" if v1 else "scope"
        requested = form.get(name, "").strip()
        if not requested:
            raise missing_parameter(name)
        return app, requested

    async def _authenticate_client(
        self, app: EntraApp, form: dict[str, str], attempt: _Attempt
    ) -> None:
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        attempt.grant = (
            "client_assertion" if assertion else "client_secret" if secret else "missing"
        )
        self._stats.requests_by_grant[attempt.grant] += 1
        if not (secret or assertion) or (secret and assertion):
            raise invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        if secret:
            check_secret(app, secret)
            return
        assert assertion is not None
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise missing_parameter("client_assertion_type")
        await self._assertions.verify(app, assertion)

    # -- issuing --------------------------------------------------------------------------

    def _issue(
        self, app: EntraApp, tenant: str, resource: str, grant: str
    ) -> tuple[str, int, float]:
        now = self._clock.now()
        lifetime = self._config.token_ttl_seconds
        self._issues_since_sweep += 1
        if self._issues_since_sweep >= _SWEEP_EVERY:
            self._issues_since_sweep = 0
            self._issued = {t: i for t, i in self._issued.items() if i.expires_at > now}
        issuer = f"https://sts.windows.net/{tenant}/"
        object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra:{tenant}:{app.client_id}"))
        # The claims of an Entra v1 app-only access token, which Azure Databricks receives.
        claims = {
            "aud": resource,
            "iss": issuer,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + lifetime,
            "appid": app.client_id,
            "appidacr": "2" if grant == "client_assertion" else "1",
            "idp": issuer,
            "oid": object_id,
            "sub": object_id,
            "tid": tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        headers = {"kid": self._kid, "x5t": self._kid}
        assert self._key is not None, "a token is only issued for a configured tenant"
        token = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        principal = Principal(app.name, app.client_id)
        self._issued[token] = _Issued(principal, resource, now + lifetime)
        label = _RESOURCE_LABELS[resource]
        self._stats.issued_by_app[app.name] += 1
        self._stats.issued_by_resource[label] += 1
        log.info(
            "emulator_entra_token_issued",
            tenant=tenant,
            app=app.name,
            grant=grant,
            resource=label,
            expires_in=lifetime,
        )
        return token, lifetime, now

    # -- tenant discovery ---------------------------------------------------------------------

    async def _aad_auth(self, request: web.Request) -> web.Response:
        """Where a workspace sends a browser to log in; clients read the tenant off the path."""
        if not self._config.tenants:
            raise web.HTTPNotFound()
        tenant = self._config.tenants[0].tenant_id
        origin = request.url.origin()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": DATABRICKS_RESOURCE,
                "redirect_uri": f"{origin}/aad/redirect",
                "state": secrets.token_urlsafe(12),
            }
        )
        location = f"{origin}/{tenant}/oauth2/authorize?{query}"
        return web.Response(status=302, headers={"Location": location})


def _new_key() -> rsa.RSAPrivateKey:
    # RS256 with a 2048-bit key, as Entra signs.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def _form(request: web.Request) -> dict[str, str]:
    # Entra reads only a form body; anything else reads as a request with no parameters.
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
