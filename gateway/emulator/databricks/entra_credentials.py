"""Entra's checks of a token request: the resource it asks for, and how the app proves itself
(a client secret or a client assertion), with Entra's error answers.

Every refusal is an ``EntraError``: Entra's body (``error``, an ``error_description`` starting
``AADSTS<code>:`` and ending with trace, correlation id and timestamp, ``error_codes``...).
The codes are best effort; those marked * were not seen in the wild for this case and are the
nearest real code:

    90002   400 invalid_request        unknown tenant
    900144  400 invalid_request        grant_type, client_id, scope, resource or
                                       client_assertion_type missing (* the last: also wrong)
    70003   400 unsupported_grant_type anything but client_credentials
    700016  400 unauthorized_client    unknown client_id in this tenant
    70011   400 invalid_scope          more than one scope
    1002012 400 invalid_scope          a scope without /.default
    500011  400 invalid_resource       a resource other than Azure Databricks or management
    7000218 401 invalid_client         neither client_secret nor client_assertion (* both)
    7000215 401 invalid_client         wrong client secret
    50027   400 invalid_request        client_assertion is no JWT (* or an unsupported alg)
    700211  401 invalid_client         no federated credential trusts the assertion's iss
    700213  401 invalid_client         ... with its sub (compared case-sensitively)
    700212  401 invalid_client         ... with any of its aud
    700027  401 invalid_client         the assertion's signature does not verify
    700024  401 invalid_client         the assertion is expired or not yet valid
    50166   400 invalid_request        the issuer's discovery document or JWKS cannot be had (*)

invalid_client is 401 as Entra sends it for bad secrets and federated-credential mismatches
(seen in public reports), not 400.

An assertion is checked as Entra checks a federated identity credential: a credential of the
app must name its ``iss``, its ``sub`` and one of its ``aud``; its signature must verify with
a key of the issuer, found by OIDC discovery (``<iss>/.well-known/openid-configuration``)
through the identity service's ``DocumentCache`` (one session, cached, an unknown ``kid``
refetches); ``exp`` and ``nbf`` are checked on the emulator's clock with
``assertion_clock_skew_seconds`` of skew. RS256 and ES256 are accepted.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from jwt.types import Options

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.entra_config import EntraApp
from gateway.emulator.databricks.identity_federation import (
    SUPPORTED_ALGORITHMS,
    DocumentCache,
    OAuthError,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DATABRICKS_RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
MANAGEMENT_RESOURCE = "https://management.core.windows.net/"
# Azure DevOps (Git credentials of Azure DevOps Git folders, reference section 7).
AZURE_DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"

# A resource's URI and its app id URI both name it; the management one is usually written
# with its trailing slash, so its /.default scope has two.
_RESOURCES = {
    DATABRICKS_RESOURCE: DATABRICKS_RESOURCE,
    MANAGEMENT_RESOURCE: MANAGEMENT_RESOURCE,
    MANAGEMENT_RESOURCE.rstrip("/"): MANAGEMENT_RESOURCE,
    AZURE_DEVOPS_RESOURCE: AZURE_DEVOPS_RESOURCE,
}

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_FEDERATION_HINT = (
    "Check your federated identity credential Subject, Audience and Issuer against the "
    "presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)
# The claims are matched by hand, and time is checked on the emulator's clock, not PyJWT's.
_SIGNATURE_ONLY: Options = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class EntraError(Exception):
    """An error answer of the token endpoint, in Entra's shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def response(self, request: web.Request, now: float) -> web.Response:
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        # MSAL sends client-request-id and Entra answers it back as the correlation id.
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        body = {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description}\r\n"
            f"Trace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{request.url.origin()}/error?code={self.code}",
        }
        return web.json_response(body, status=self.status, headers=NO_STORE)


def bad_request(code: int, description: str, error: str = "invalid_request") -> EntraError:
    return EntraError(400, error, code, description)


def invalid_client(code: int, description: str) -> EntraError:
    return EntraError(401, "invalid_client", code, description)


def missing_parameter(name: str) -> EntraError:
    return bad_request(900144, f"The request body must contain the following parameter: '{name}'.")


def requested_resource(requested: str, *, v1: bool, tenant: str) -> str:
    """The resource a v1 ``resource`` or a v2 ``scope`` names; ``EntraError`` if none."""
    if v1:
        uri = requested
    else:
        scopes = requested.split()
        if len(scopes) > 1:
            raise bad_request(
                70011,
                f"The provided value for the input parameter 'scope' is not valid. "
                f"The scope {requested} is not valid.",
                error="invalid_scope",
            )
        uri, suffix, rest = scopes[0].rpartition("/.default")
        if not suffix or rest:
            raise bad_request(
                1002012,
                f"The provided value for scope {requested} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
                error="invalid_scope",
            )
    resource = _RESOURCES.get(uri)
    if resource is None:
        raise bad_request(
            500011,
            f"The resource principal named {uri} was not found in the tenant named "
            f"{tenant}. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant.",
            error="invalid_resource",
        )
    return resource


def check_secret(app: EntraApp, secret: str) -> None:
    """Pass if ``secret`` is one of the app's; ``EntraError`` 7000215 otherwise."""
    # Compare against every secret so the time taken does not tell which one matched.
    matched = False
    for known in app.secrets:
        matched |= hmac.compare_digest(known.get_secret_value().encode(), secret.encode())
    if not matched:
        raise invalid_client(
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
        )


class AssertionVerifier:
    """Checks a client assertion against an app's federated credentials."""

    def __init__(self, clock: Clock, documents: DocumentCache, *, skew: float) -> None:
        self._clock = clock
        self._documents = documents
        self._skew = skew

    async def verify(self, app: EntraApp, assertion: str) -> None:
        """Pass if ``assertion`` logs ``app`` in; ``EntraError`` saying why not otherwise."""
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise bad_request(50027, "JWT token is invalid or malformed.") from exc
        if header.get("alg") not in SUPPORTED_ALGORITHMS:
            raise bad_request(50027, f"JWT token is signed with {header.get('alg')!r}.")
        issuer, subject = claims.get("iss"), claims.get("sub")
        matching = [c for c in app.federated_credentials if c.issuer == issuer]
        if not matching or not isinstance(issuer, str):
            raise invalid_client(
                700211,
                "No matching federated identity record found for presented assertion issuer "
                f"'{issuer}'. {_FEDERATION_HINT}",
            )
        matching = [c for c in matching if c.subject == subject]
        if not matching:
            raise invalid_client(
                700213,
                "No matching federated identity record found for presented assertion subject "
                f"'{subject}'. {_FEDERATION_HINT}",
            )
        aud = claims.get("aud")
        audiences = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        if not any(audiences.intersection(c.audiences) for c in matching):
            raise invalid_client(
                700212,
                "No matching federated identity record found for presented assertion audience "
                f"'{aud}'. {_FEDERATION_HINT}",
            )
        await self._check_signature(assertion, header, issuer)
        self._check_time(claims)

    async def _check_signature(self, assertion: str, header: dict[str, Any], issuer: str) -> None:
        algorithm: str = header["alg"]
        kid = header.get("kid")
        keys = _usable(await self._jwks(issuer, force=False), algorithm, kid)
        if not keys and kid is not None:
            # An unknown kid may be a key the issuer rotated in since the last fetch.
            keys = _usable(await self._jwks(issuer, force=True), algorithm, kid)
        for key in keys:
            try:
                jwt.decode(assertion, key.key, algorithms=[algorithm], options=_SIGNATURE_ONLY)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise bad_request(50027, "JWT token is invalid or malformed.") from exc
            return
        reason = "The signature does not verify." if keys else "The key was not found."
        raise invalid_client(700027, f"Client assertion contains an invalid signature. [{reason}]")

    async def _jwks(self, issuer: str, *, force: bool) -> list[jwt.PyJWK]:
        """The issuer's signing keys, found as Entra finds them: by OIDC discovery."""
        try:
            discovery = await self._documents.get(
                issuer.rstrip("/") + "/.well-known/openid-configuration"
            )
            uri = discovery.get("jwks_uri")
            body = await self._documents.get(uri, force=force) if isinstance(uri, str) else {}
        except OAuthError as exc:
            raise bad_request(
                50166, f"Request to External OIDC endpoint failed. ({exc.description})"
            ) from exc
        raw = body.get("keys")
        if not isinstance(raw, list):
            raise bad_request(
                50166, f"Request to External OIDC endpoint failed. ({issuer} has no JWK set)"
            )
        keys: list[jwt.PyJWK] = []
        for data in raw:
            try:
                keys.append(jwt.PyJWK(data))
            except (jwt.PyJWTError, TypeError, ValueError, AttributeError):
                # An unusable key (encryption, an unknown kty) must not hide the others.
                continue
        return keys

    def _check_time(self, claims: dict[str, Any]) -> None:
        now = self._clock.now()
        exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf", 0))
        if exp is None or nbf is None:
            raise bad_request(50027, "JWT token is invalid or malformed. (exp or nbf)")
        if now > exp + self._skew or now + self._skew < nbf:
            raise invalid_client(
                700024,
                f"Client assertion is not within its valid time range. Current time: "
                f"{_iso(now)}, assertion valid from {_iso(nbf)}, expiry time of assertion "
                f"{_iso(exp)}. Review the documentation at "
                "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            )


def _usable(keys: list[jwt.PyJWK], algorithm: str, kid: object) -> list[jwt.PyJWK]:
    return [k for k in keys if k.algorithm_name == algorithm and (kid is None or k.key_id == kid)]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _iso(epoch: float) -> str:
    # Entra prints seven fractional digits.
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def check_assigned(app: EntraApp, resource: str) -> None:
    """Pass unless the resource requires a role assignment the app lacks (AADSTS501051)."""
    if resource in app.unassigned_resources:
        raise bad_request(
            501051,
            f"Application '{app.client_id}'({app.name}) is not assigned to a role for the "
            f"application '{resource}'.",
            error="invalid_grant",
        )
