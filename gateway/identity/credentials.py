"""Credentials with values given up front; each is a ``TokenProvider`` for the Jobs client.

``PatCredential`` is a static personal access token. ``OAuthM2MCredential`` is a Databricks
service principal's client id and secret, traded at the workspace's token endpoint for
short-lived tokens: a ``CachedCredential`` over ``sources.oauth_m2m``, in the ``TokenCache``
it is given, or in one of its own. The cache refreshes on the Databricks SDK's schedule
(FRESH, STALE, EXPIRED; reference §6.3), one fetch at a time, and drops a refused token only
if it is still the cached one. Credentials read from Kubernetes at fetch time are built by the
resolver from ``CachedCredential`` and ``gateway.identity.sources`` directly.

Secrets live in memory only: never logged, never in a repr.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from gateway.databricks import oauth
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable
from gateway.identity import sources
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.logs import get_logger

log = get_logger(__name__)

MASK = "**********"


class PatCredential:
    """A personal access token. It cannot be refreshed: a refused PAT needs a new secret."""

    auth_type = "pat"

    def __init__(self, token: str, *, namespace: str = "", source: str | None = None) -> None:
        if not token.strip():
            raise CredentialUnavailable(
                "the personal access token is empty", namespace=namespace, source=source
            )
        self._token = token
        self.namespace = namespace
        self.source = source

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        # Nothing to drop or fetch; the log tells the operator the PAT was revoked or expired.
        log.warning(
            "pat_token_refused",
            namespace=self.namespace,
            source=self.source,
            current=token == self._token,
        )

    def __repr__(self) -> str:
        return f"PatCredential(namespace={self.namespace!r}, token={MASK!r})"


class OAuthM2MCredential(CachedCredential):
    """A service principal's OAuth client credentials, with a cached, refreshed token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        client_id: str,
        client_secret: str,
        *,
        namespace: str = "",
        source: str | None = None,
        scope: str = oauth.DEFAULT_SCOPE,
        token_endpoint: str | None = None,
        retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
        request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        cache: TokenCache | None = None,
    ) -> None:
        fetch = sources.oauth_m2m(
            session,
            host,
            client_id,
            client_secret,
            namespace=namespace,
            source=source,
            scope=scope,
            token_endpoint=token_endpoint,
            retry=retry,
            request_timeout=request_timeout,
            clock=clock,
        )
        # Without a shared cache the credential keeps its one token in a cache of its own,
        # and closing the credential closes that cache.
        self._owns_cache = cache is None
        key = CacheKey(namespace, f"oauth-m2m:client/{client_id}", host.rstrip("/"))
        super().__init__(
            cache if cache is not None else TokenCache(max_entries=1, clock=clock),
            key,
            fetch,
            kind="oauth-m2m",
            namespace=namespace,
        )
        self.host = key.host
        self.client_id = client_id
        self.source = source

    async def aclose(self) -> None:
        """Cancel a refresh in flight, if the cache is the credential's own."""
        if self._owns_cache:
            await self._cache.aclose()

    def __repr__(self) -> str:
        return (
            f"OAuthM2MCredential(host={self.host!r}, client_id={self.client_id!r}, "
            f"namespace={self.namespace!r}, client_secret={MASK!r})"
        )
