"""JWTs from configured OIDC issuers (CI systems such as GitHub Actions, other clusters).

A token is checked against its issuer's keys (``gateway.callers.jwks``) with PyJWT: the algorithm on
the allow-list (RS256, ES256; never ``none`` or an HMAC the public key could forge), ``iss``,
``aud``, ``exp`` and ``nbf`` with the issuer's leeway. Its namespaces come from claims:
``namespace_claim`` names a claim whose value is the namespace, and ``claim_map`` maps a
claim's values (``repository: org/repo-a``) to namespaces. The subject is
``jwt:<issuer>#<subject claim>``, which grants match with globs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from gateway.callers.jwks import IssuerKeys, Session
from gateway.callers.types import Identity, Refused, bounded
from gateway.settings import NAMESPACE_RE, JwtIssuer

# Far above any real token, far below what would make parsing one costly.
MAX_TOKEN_CHARS = 16_384

_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token was not issued for this gateway's audience"),
    (jwt.InvalidIssuerError, "the token's issuer is not accepted"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.DecodeError, "the token is malformed"),
)


def _segment(text: str) -> Any:
    padded = text + "=" * (-len(text) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _parts(token: str) -> tuple[Any, Any] | None:
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        return _segment(parts[0]), _segment(parts[1])
    except (binascii.Error, ValueError, UnicodeError):
        return None


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWT, NOT verified: only for routing and cache lifetimes."""
    parts = _parts(token)
    if parts is None or not isinstance(parts[0], dict) or not isinstance(parts[1], dict):
        return None
    return parts[1]


def peek_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a JWT-shaped token; None when it is not one."""
    claims = unverified_claims(token)
    issuer = claims.get("iss") if claims is not None else None
    return issuer if isinstance(issuer, str) else None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def namespaces_from_claims(settings: JwtIssuer, claims: Mapping[str, Any]) -> frozenset[str]:
    """The namespaces a verified token's claims map to; invalid names are dropped. Pure."""
    found: set[str] = set()
    if settings.namespace_claim is not None:
        found.update(_strings(claims.get(settings.namespace_claim)))
    for mapping in settings.claim_map:
        for value in _strings(claims.get(mapping.claim)):
            found.update(mapping.values.get(value, ()))
    return frozenset(n for n in found if NAMESPACE_RE.match(n))


def refusal_reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "the token is not valid"


class JwtAuthenticator:
    def __init__(self, issuers: Sequence[JwtIssuer], session: Session) -> None:
        self.issuers = tuple(issuers)
        self._keys = {i.issuer: IssuerKeys(i, session) for i in self.issuers}

    def accepts(self, issuer: str) -> bool:
        return issuer in self._keys

    async def aclose(self) -> None:
        for keys in self._keys.values():
            await keys.aclose()

    async def authenticate(self, token: str) -> Identity:
        issuer = peek_issuer(token)
        keys = self._keys.get(issuer) if issuer is not None else None
        if keys is None:
            raise Refused("the token's issuer is not accepted")
        settings = keys.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Refused(refusal_reason(exc)) from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in settings.algorithms:
            raise Refused("the token's signing algorithm is not accepted")
        candidates = await keys.keys_for(kid if isinstance(kid, str) else None, alg)
        if not candidates:
            raise Refused("the token was not signed by a key of its issuer")
        claims = self._verify(token, settings, alg, candidates)
        subject = claims.get(settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Refused("the token lacks its subject claim")
        return Identity(
            subject=bounded(f"jwt:{settings.issuer}#{subject}"),
            method="jwt",
            namespaces=namespaces_from_claims(settings, claims),
        )

    @staticmethod
    def _verify(token: str, settings: JwtIssuer, alg: str, keys: list[Any]) -> dict[str, Any]:
        failure: jwt.PyJWTError | None = None
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=list(settings.audiences),
                    issuer=settings.issuer,
                    leeway=settings.leeway_seconds,
                    options={"require": ["exp", "iss", "aud"]},
                )
                return claims
            except jwt.InvalidSignatureError as exc:
                failure = exc  # several keys may share a kid during rotation: try the next
            except jwt.PyJWTError as exc:
                raise Refused(refusal_reason(exc)) from None
        raise Refused(refusal_reason(failure or jwt.InvalidSignatureError()))
