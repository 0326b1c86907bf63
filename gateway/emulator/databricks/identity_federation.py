"""OIDC token federation: check a subject JWT against federation policies.

Keys come from the policy's ``jwks_json``, its ``jwks_uri``, or the issuer's discovery document
(``<iss>/.well-known/openid-configuration``), fetched with the one ``ClientSession`` the
identity service owns. Plain-http issuers are allowed because the fake Kubernetes API serves
one on loopback. Documents are cached per URL for ``jwks_cache_seconds``, one fetch in flight
per URL, and a JWT whose ``kid`` the cached set lacks forces one refetch (key rotation).

Time checks use the emulator's clock, not PyJWT's, so tests that advance the clock see JWTs
expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.identity_config import (
    AccountFederationPolicy,
    FederationPolicy,
)

SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})


class OAuthError(Exception):
    """An RFC 6749 error answer of the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        headers = {"Cache-Control": "no-store"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="oidc"'
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
            headers=headers,
        )


@dataclass(frozen=True)
class _Document:
    body: dict[str, Any]
    fetched_at: float


class DocumentCache:
    """JSON documents (discovery, JWKS) by URL: cached briefly, one fetch in flight per URL."""

    def __init__(self, clock: Clock, *, ttl: float, timeout: float, error_status: int) -> None:
        self._clock = clock
        self._ttl = ttl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._error_status = error_status
        self._docs: dict[str, _Document] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.session: aiohttp.ClientSession | None = None
        self.fetches = 0

    async def get(self, url: str, *, force: bool = False) -> dict[str, Any]:
        seen = self._docs.get(url)
        async with self._locks.setdefault(url, asyncio.Lock()):
            doc = self._docs.get(url)
            if doc is not None and doc is not seen:
                # Someone else fetched while this task waited: that copy is as fresh as ours.
                return doc.body
            if (
                doc is not None
                and not force
                and self._clock.monotonic() - doc.fetched_at < self._ttl
            ):
                return doc.body
            body = await self._fetch(url)
            self._docs[url] = _Document(body, self._clock.monotonic())
            return body

    async def _fetch(self, url: str) -> dict[str, Any]:
        if self.session is None:
            raise RuntimeError("IdentityService.cleanup_ctx is not in the app's cleanup_ctx")
        self.fetches += 1
        try:
            async with self.session.get(url, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise self._failed(url, f"HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._failed(url, type(exc).__name__) from exc
        if not isinstance(body, dict):
            raise self._failed(url, "not a JSON object")
        return body

    def _failed(self, url: str, why: str) -> OAuthError:
        return OAuthError(self._error_status, "invalid_grant", f"could not fetch {url}: {why}")


@dataclass(frozen=True)
class Verified:
    policy: AccountFederationPolicy
    claims: dict[str, Any]


class FederationVerifier:
    """Finds the policy a subject JWT satisfies, or says precisely why none does."""

    def __init__(
        self,
        clock: Clock,
        documents: DocumentCache,
        *,
        account_id: str,
        leeway: float,
        error_status: int,
    ) -> None:
        self._clock = clock
        self._documents = documents
        self._account_id = account_id
        self._leeway = leeway
        self._status = error_status

    def _grant_error(self, description: str) -> OAuthError:
        return OAuthError(self._status, "invalid_grant", description)

    async def verify(
        self, token: str, policies: Sequence[AccountFederationPolicy], *, owner: str
    ) -> Verified:
        """Return the first policy (of ``owner``'s) that ``token`` satisfies, with its claims."""
        header, unverified = _inspect(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise self._grant_error("subject_token has no iss claim")
        candidates = [p for p in policies if p.issuer == issuer]
        if not candidates:
            raise self._grant_error(f"no federation policy of {owner} trusts issuer {issuer}")
        problems: list[str] = []
        for policy in candidates:
            try:
                claims = await self._check(token, header, policy)
            except OAuthError as exc:
                if exc.error != "invalid_grant" or exc.status != self._status:
                    raise
                problems.append(exc.description)
                continue
            return Verified(policy, claims)
        raise self._grant_error("; ".join(dict.fromkeys(problems)))

    async def _check(
        self, token: str, header: dict[str, Any], policy: AccountFederationPolicy
    ) -> dict[str, Any]:
        claims = await self._verify_signature(token, header, policy)
        self._check_audience(claims, policy)
        self._check_time(claims)
        value = claims.get(policy.subject_claim)
        if not isinstance(value, str) or not value:
            raise self._grant_error(f"subject_token has no {policy.subject_claim} claim")
        if isinstance(policy, FederationPolicy) and value != policy.subject:
            raise self._grant_error(
                f"subject claim {policy.subject_claim} is {value!r}, "
                f"the policy wants {policy.subject!r}"
            )
        return claims

    async def _verify_signature(
        self, token: str, header: dict[str, Any], policy: AccountFederationPolicy
    ) -> dict[str, Any]:
        algorithm: str = header["alg"]
        kid = header.get("kid")
        keys, refreshable = await self._keys(policy, force=False)
        candidates = _candidates(keys, algorithm, kid)
        if not candidates and refreshable and kid is not None:
            keys, _ = await self._keys(policy, force=True)
            candidates = _candidates(keys, algorithm, kid)
        if not candidates:
            which = f"kid {kid!r}" if kid is not None else f"{algorithm} key"
            raise self._grant_error(f"no {which} in the keys of issuer {policy.issuer}")
        for key in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise self._grant_error(f"subject_token is not acceptable: {exc}") from exc
            return claims
        raise self._grant_error(
            f"subject_token signature does not verify with the keys of issuer {policy.issuer}"
        )

    async def _keys(
        self, policy: AccountFederationPolicy, *, force: bool
    ) -> tuple[list[jwt.PyJWK], bool]:
        """The policy's signing keys, and whether refetching them could change the answer."""
        if policy.jwks_json is not None:
            return self._parse(policy.jwks_json, "the policy's jwks_json"), False
        uri = policy.jwks_uri
        if uri is None:
            discovery_url = policy.issuer.rstrip("/") + "/.well-known/openid-configuration"
            discovery = await self._documents.get(discovery_url)
            uri = discovery.get("jwks_uri")
            if not isinstance(uri, str):
                raise self._grant_error(
                    f"the discovery document of {policy.issuer} has no jwks_uri"
                )
        return self._parse(await self._documents.get(uri, force=force), uri), True

    def _parse(self, body: dict[str, Any], source: str) -> list[jwt.PyJWK]:
        try:
            return _parse_jwks(body)
        except ValueError as exc:
            raise self._grant_error(f"{source} is not a JWK set") from exc

    def _check_audience(self, claims: dict[str, Any], policy: AccountFederationPolicy) -> None:
        wanted = policy.audiences if policy.audiences is not None else (self._account_id,)
        aud = claims.get("aud")
        got = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(wanted).intersection(a for a in got if isinstance(a, str)):
            raise self._grant_error(
                f"subject_token audience {got} matches none of the policy's {list(wanted)}"
            )

    def _check_time(self, claims: dict[str, Any]) -> None:
        now = self._clock.now()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise self._grant_error("subject_token has no exp claim")
        if now > exp + self._leeway:
            raise self._grant_error("subject_token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + self._leeway < nbf:
            raise self._grant_error("subject_token is not valid yet (nbf)")


def _inspect(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and unverified claims, enough to pick a policy; nothing here is trusted."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise OAuthError(400, "invalid_request", "subject_token is not a well-formed JWT") from exc
    if header.get("alg") not in SUPPORTED_ALGORITHMS:
        raise OAuthError(
            400,
            "invalid_request",
            f"subject_token is signed with {header.get('alg')!r}; RS256 or ES256 is required",
        )
    return header, claims


def _parse_jwks(body: dict[str, Any]) -> list[jwt.PyJWK]:
    """The usable keys of a JWK set; ValueError when ``body`` is no JWK set at all."""
    raw = body.get("keys")
    if not isinstance(raw, list):
        raise ValueError("not a JWK set")
    keys: list[jwt.PyJWK] = []
    for data in raw:
        try:
            keys.append(jwt.PyJWK(data))
        except (jwt.PyJWTError, TypeError, ValueError, AttributeError):
            # One unusable key (an unsupported kty, an encryption key) must not hide the rest.
            continue
    return keys


def _candidates(keys: list[jwt.PyJWK], algorithm: str, kid: object) -> list[jwt.PyJWK]:
    return [k for k in keys if k.algorithm_name == algorithm and (kid is None or k.key_id == kid)]
