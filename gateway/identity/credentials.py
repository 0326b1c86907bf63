"""Credentials a namespace can own; each is a ``TokenProvider`` for the Jobs client.

``PatCredential`` is a static personal access token. ``OAuthM2MCredential`` is a Databricks
service principal's client id and secret, traded at the workspace's token endpoint for
short-lived access tokens, which it caches and refreshes on the Databricks SDK's schedule
(reference §6.3):

- FRESH: served as is.
- STALE (inside ``min(TTL/2, 20 min)`` of expiry): served, and refreshed in the background.
- EXPIRED (under 40 s left, as Azure refuses tokens with 30 s left): refreshed before serving.

One refresh is in flight per credential however many callers wait (single-flight), and a
refused token is dropped only if it is still the cached one (compare-and-invalidate).
Secrets live in memory only: never logged, never in a repr.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable
from gateway.logs import get_logger

log = get_logger(__name__)

MASK = "**********"
EXPIRY_MARGIN_SECONDS = 40.0
MAX_STALE_WINDOW_SECONDS = 20 * 60.0
# After a failed background refresh the still-valid token is served for this long before the
# next background try, so a down token endpoint is not hammered by every call.
BACKGROUND_RETRY_SECONDS = 60.0


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


class OAuthM2MCredential:
    """A service principal's OAuth client credentials, with a cached, refreshed token."""

    auth_type = "oauth-m2m"

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
    ) -> None:
        if not client_id or not client_secret:
            raise CredentialUnavailable(
                "OAuth M2M needs a client id and a client secret",
                namespace=namespace,
                source=source,
            )
        self._session = session
        self.host = host.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.namespace = namespace
        self.source = source
        self._scope = scope
        self._token_endpoint = token_endpoint
        self._retry = retry
        self._request_timeout = request_timeout
        self._clock = clock
        self._token: AccessToken | None = None
        self._stale_at = 0.0
        self._refresh: asyncio.Task[AccessToken] | None = None
        self._background_not_before = 0.0

    async def token(self) -> str:
        now = self._clock()
        current = self._token
        if current is None or _expired(current, now):
            current = await self._refreshed()
        elif now >= self._stale_at and now >= self._background_not_before:
            self._start_refresh(background=True)
        return current.value

    def invalidate(self, token: str) -> None:
        current = self._token
        if current is None or current.value != token:
            # Another caller already dropped it, or a newer token replaced it: keep that one.
            return
        self._token = None
        log.info("oauth_token_invalidated", namespace=self.namespace, client_id=self.client_id)

    async def aclose(self) -> None:
        """Cancel a refresh in flight; the owner calls this when it drops the credential."""
        task = self._refresh
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def __repr__(self) -> str:
        return (
            f"OAuthM2MCredential(host={self.host!r}, client_id={self.client_id!r}, "
            f"namespace={self.namespace!r}, client_secret={MASK!r})"
        )

    # --- refreshing -------------------------------------------------------------------------

    async def _refreshed(self) -> AccessToken:
        # shield: a caller that gives up must not cancel the refresh the others wait for.
        return await asyncio.shield(self._start_refresh(background=False))

    def _start_refresh(self, *, background: bool) -> asyncio.Task[AccessToken]:
        task = self._refresh
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._fetch(), name=f"oauth-refresh-{self.namespace or self.client_id}"
            )
            self._refresh = task
            if background:
                task.add_done_callback(self._background_done)
            else:
                # Waiters get the error; if every waiter gave up, this keeps asyncio from
                # reporting it as never retrieved.
                task.add_done_callback(_consume_exception)
        return task

    async def _fetch(self) -> AccessToken:
        try:
            if self._token_endpoint is None:
                self._token_endpoint = await oauth.discover_token_endpoint(
                    self._session, self.host, request_timeout=self._request_timeout
                )
            requested_at = self._clock()
            token = await oauth.client_credentials(
                self._session,
                self._token_endpoint,
                self.client_id,
                self._client_secret,
                self._scope,
                namespace=self.namespace,
                retry=self._retry,
                request_timeout=self._request_timeout,
                clock=self._clock,
            )
            self._token = token
            self._stale_at = _stale_at(token, requested_at)
            log.info(
                "oauth_token_refreshed",
                namespace=self.namespace,
                client_id=self.client_id,
                expires_in=round(token.expires_at - requested_at) if token.expires_at else None,
            )
            return token
        finally:
            # Cleared inside the task, before anyone can see it done, so a later refresh
            # never joins a finished one and gets back a token that was just invalidated.
            self._refresh = None

    def _background_done(self, task: asyncio.Task[AccessToken]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._background_not_before = self._clock() + BACKGROUND_RETRY_SECONDS
            log.warning(
                "oauth_background_refresh_failed",
                namespace=self.namespace,
                client_id=self.client_id,
                error=type(exc).__name__,
                message=str(exc),
            )


def _expired(token: AccessToken, now: float) -> bool:
    left = token.seconds_left(now)
    return left is not None and left < EXPIRY_MARGIN_SECONDS


def _stale_at(token: AccessToken, obtained_at: float) -> float:
    if token.expires_at is None:
        return float("inf")
    ttl = max(token.expires_at - obtained_at, 0.0)
    return token.expires_at - min(ttl / 2, MAX_STALE_WINDOW_SECONDS)


def _consume_exception(task: asyncio.Task[AccessToken]) -> None:
    if not task.cancelled():
        task.exception()
