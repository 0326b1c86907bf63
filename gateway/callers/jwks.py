"""The signing keys of a configured JWT issuer, fetched over HTTP and cached.

Keys come from the configured ``jwks_uri`` or from the issuer's OIDC discovery document
(``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must equal the configured
one). They are kept for ``jwks_cache_seconds``; a token whose ``kid`` is unknown triggers one
refetch (key rotation), at most every ``jwks_refetch_seconds``, so a stream of tokens with
made-up kids cannot make lakegate hammer the issuer: each attempt is an entry of a
``TtlCache`` that lives ``jwks_refetch_seconds``, so one fetch is in flight per issuer and
waiters share its answer. When a refetch fails, the keys already held are kept; with none
held, the caller gets a 502, not a 401: the credential may be fine.

This is the callers' one HTTP client: aiohttp's exceptions are translated here, at this edge,
and it is the only module of ``gateway.callers`` that imports aiohttp (an import-linter
contract says so).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from gateway.errors import UpstreamError
from gateway.logs import get_logger
from gateway.settings import JwtIssuer, is_loopback_host
from gateway.singleflight import TtlCache

log = get_logger(__name__)

MAX_DOCUMENT_BYTES = 512 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
# The HTTP session the composition root hands in; named here so the rest of the package needs
# no aiohttp import of its own.
Session = aiohttp.ClientSession
# Which JWK key types can verify which of the algorithms we allow.
_KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


def usable_keys(document: Mapping[str, Any], algorithms: tuple[str, ...]) -> dict[str, list[Any]]:
    """Signing keys by kid (``""`` for keys without one), parsed; others skipped. Pure."""
    keys: dict[str, list[Any]] = {}
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        raise ValueError("the JWKS has no 'keys' list")
    for raw in raw_keys:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        for alg in algorithms:
            kty, crv = _KEY_TYPES[alg]
            if raw.get("kty") != kty or (crv is not None and raw.get("crv") != crv):
                continue
            if raw.get("alg") not in (None, alg):
                continue
            try:
                key = jwt.PyJWK(raw, algorithm=alg)
            except jwt.PyJWKError:
                continue
            kid = raw.get("kid")
            keys.setdefault(kid if isinstance(kid, str) else "", []).append((alg, key.key))
    return keys


def _safe_url(value: object, issuer: str) -> str:
    if not isinstance(value, str):
        raise ValueError("the discovery document has no jwks_uri")
    parts = urlsplit(value)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return value
    raise ValueError(f"the jwks_uri of {issuer} is not https")


class IssuerKeys:
    """The keys of one issuer; ``keys_for(kid, alg)`` answers the candidate verification keys."""

    def __init__(
        self,
        settings: JwtIssuer,
        session: Session,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._session = session
        self._clock = clock
        self._keys: dict[str, list[Any]] | None = None
        self._fetched_at = 0.0
        # One entry, the last attempt: while it lives no other fetch starts, and while it is
        # loading every request that wants keys waits for it.
        self._attempts: TtlCache[str, bool] = TtlCache(1, clock=clock, name="jwks-fetch")

    async def keys_for(self, kid: str | None, alg: str) -> list[Any]:
        """The keys that may have signed a token with this header; raises ``UpstreamError``
        only when no key of the issuer has ever been fetched."""
        keys = self._keys
        wanted = (
            keys is None
            or self._clock() - self._fetched_at >= self.settings.jwks_cache_seconds
            or (kid is not None and kid not in keys)
        )
        if wanted:
            await self._attempts.get(self.settings.issuer, self._refresh)
        keys = self._keys
        if keys is None:
            raise UpstreamError(
                f"The signing keys of issuer {self.settings.issuer} could not be fetched."
            )
        candidates = keys.get(kid, []) if kid is not None else [k for v in keys.values() for k in v]
        return [key for key_alg, key in candidates if key_alg == alg]

    async def _refresh(self) -> tuple[bool, float]:
        retry_in = self.settings.jwks_refetch_seconds
        try:
            keys = usable_keys(await self._fetch_jwks(), self.settings.algorithms)
        except (UpstreamError, ValueError) as exc:
            # Keep the keys already held; the next try waits for the refetch interval.
            reason = exc.message if isinstance(exc, UpstreamError) else str(exc)
            log.warning("jwks_fetch_failed", issuer=self.settings.issuer, error=reason)
            return False, retry_in
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("jwks_fetched", issuer=self.settings.issuer, kids=sorted(keys))
        return True, retry_in

    async def aclose(self) -> None:
        await self._attempts.aclose()

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        uri = self.settings.jwks_uri
        if uri is None:
            issuer = self.settings.issuer
            discovery = await self._get_json(
                issuer.rstrip("/") + "/.well-known/openid-configuration"
            )
            if discovery.get("issuer") != issuer:
                raise ValueError(f"the discovery document of {issuer} names another issuer")
            uri = _safe_url(discovery.get("jwks_uri"), issuer)
        return await self._get_json(uri)

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        try:
            async with self._session.get(
                url, timeout=FETCH_TIMEOUT, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise UpstreamError(
                        f"{url} answered {response.status}.", http_status=response.status
                    )
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"{url} could not be reached: {type(exc).__name__}.") from exc
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{url} did not send JSON") from exc
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not send a JSON object")
        return document
