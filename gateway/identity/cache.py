"""The token cache every credential shares: refresh ahead of expiry, one fetch per key.

An entry is keyed by namespace, identity and host (``CacheKey``), and its token is in one of
the Databricks SDK's three states (reference §6.3):

- FRESH: served as is.
- STALE (inside ``min(TTL/2, 20 min)`` of expiry): served, and ONE refresh starts in the
  background; if that fails, the still-valid token is served for a minute before the next try.
- EXPIRED (in its last minute: Azure refuses tokens with 30 s left, and a Jobs call with its
  retries must not outlive the token), or no token yet: callers wait for the refresh in
  flight, starting it if there is none. A fetch that yields a token already in its last
  minute fails (transient): no token is ever sent in its last minute.

A refresh is a task per key (single-flight): however many callers wait, one fetch runs, and
its result or error reaches every one of them. Callers await it through ``asyncio.shield``, so
one that gives up does not cancel it for the rest. Tokens without an expiry never refresh.

``invalidate`` compares before it drops (a late 401 for an old token keeps the new one);
the size is bounded by least-recent use, and neither eviction nor ``forget`` cancels a refresh
somebody awaits: its waiters still get the token, it just is not kept. Only ``aclose`` cancels.

The observer sees each caller (``hit``, ``miss``), each fetch (``refresh``, its latency, and
``refresh_error`` with the error's class), each ``invalidated`` drop and each ``evicted`` entry.
Tokens live only in memory and are never logged; ``CacheKey`` must name no secret.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.databricks.auth import AccessToken
from gateway.errors import TokenEndpointError
from gateway.logs import get_logger

log = get_logger(__name__)

Fetch = Callable[[], Awaitable[AccessToken]]

EXPIRY_MARGIN_SECONDS = 60.0
MAX_STALE_WINDOW_SECONDS = 20 * 60.0
# After a failed background refresh the still-valid token is served for this long before the
# next background try, so a down token endpoint is not hammered by every call.
BACKGROUND_RETRY_SECONDS = 60.0
REFRESH_TASK_PREFIX = "token-refresh:"


class TokenObserver(Protocol):
    """Where the cache reports; ``gateway.metrics.Metrics`` is one."""

    def observe_token_event(self, event: str, kind: str) -> None: ...

    def observe_token_fetch(self, kind: str, seconds: float, error: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class CacheKey:
    """One identity's tokens for one host; ``identity`` names it without a secret."""

    namespace: str
    identity: str
    host: str


class _Entry:
    """The cached token of one key and the refresh, if any, that is replacing it."""

    __slots__ = ("background_not_before", "kind", "refresh", "stale_at", "token")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.token: AccessToken | None = None
        self.stale_at = float("inf")
        self.refresh: asyncio.Task[AccessToken] | None = None
        self.background_not_before = 0.0


class TokenCache:
    """Tokens by ``CacheKey``, refreshed ahead of expiry, one fetch in flight per key."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        observer: TokenObserver | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("TokenCache needs max_entries >= 1")
        self._max_entries = max_entries
        self._clock = clock
        self._observer = observer
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        # Every refresh task, including those of evicted entries, so aclose reaches them all.
        self._tasks: set[asyncio.Task[AccessToken]] = set()
        self._closed = False

    async def get(self, key: CacheKey, fetch: Fetch, *, kind: str) -> AccessToken:
        """A usable token for ``key``, fetched with ``fetch`` when there is none."""
        if self._closed:
            raise RuntimeError("the token cache is closed")
        entry = self._entry(key, kind)
        now = self._clock()
        token = entry.token
        if token is None or _expired(token, now):
            self._event("miss", kind)
            task = entry.refresh or self._start(key, entry, fetch, kind, background=False)
            # shield: a caller that gives up must not cancel the refresh the others wait for.
            return await asyncio.shield(task)
        self._event("hit", kind)
        if entry.refresh is None and now >= entry.stale_at and now >= entry.background_not_before:
            self._start(key, entry, fetch, kind, background=True)
        return token

    def invalidate(self, key: CacheKey, value: str) -> bool:
        """Drop ``key``'s token if it is still ``value``; whether it was dropped."""
        entry = self._entries.get(key)
        if entry is None or entry.token is None or entry.token.value != value:
            # Another caller already dropped it, or a newer token replaced it: keep that one.
            return False
        entry.token = None
        entry.stale_at = float("inf")
        self._event("invalidated", entry.kind)
        log.info(
            "token_invalidated",
            namespace=key.namespace,
            identity=key.identity,
            host=key.host,
            kind=entry.kind,
        )
        return True

    def forget(self, predicate: Callable[[CacheKey], bool]) -> int:
        """Drop every entry whose key matches (refreshes in flight still finish for their
        waiters); how many were dropped."""
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            del self._entries[key]
        if doomed:
            log.info("token_cache_forgot", entries=len(doomed))
        return len(doomed)

    async def aclose(self) -> None:
        """Cancel every refresh in flight; its waiters see the cancellation."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenCache(entries={len(self._entries)}, max_entries={self._max_entries})"

    # --- entries ----------------------------------------------------------------------------

    def _entry(self, key: CacheKey, kind: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = self._entries[key] = _Entry(kind)
        while len(self._entries) > self._max_entries:
            _, evicted = self._entries.popitem(last=False)
            self._event("evicted", evicted.kind)
        return entry

    # --- refreshing -------------------------------------------------------------------------

    def _start(
        self, key: CacheKey, entry: _Entry, fetch: Fetch, kind: str, *, background: bool
    ) -> asyncio.Task[AccessToken]:
        task = asyncio.get_running_loop().create_task(
            self._refresh(key, entry, fetch, kind, background=background),
            name=f"{REFRESH_TASK_PREFIX}{kind}:{key.namespace}",
        )
        entry.refresh = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if background:
            task.add_done_callback(lambda done: self._background_done(key, entry, done))
        else:
            # Waiters get the error; if every waiter gave up, this keeps asyncio from
            # reporting it as never retrieved.
            task.add_done_callback(_consume_exception)
        return task

    async def _refresh(
        self, key: CacheKey, entry: _Entry, fetch: Fetch, kind: str, *, background: bool
    ) -> AccessToken:
        self._event("refresh", kind)
        requested_at = self._clock()
        started = time.perf_counter()
        try:
            token = await fetch()
        except Exception as exc:
            self._fetched(kind, started, type(exc).__name__)
            self._event("refresh_error", kind)
            raise
        finally:
            # Cleared inside the task, before anyone can see it done, so a later refresh
            # never joins a finished one and gets back a token that was just invalidated.
            entry.refresh = None
        self._fetched(kind, started, None)
        if _expired(token, self._clock()):
            self._event("refresh_error", kind)
            raise _too_short(key, token, self._clock())
        entry.token = token
        entry.stale_at = _stale_at(token, requested_at)
        entry.background_not_before = 0.0
        log.info(
            "token_refreshed",
            namespace=key.namespace,
            identity=key.identity,
            host=key.host,
            kind=kind,
            background=background,
            expires_in=round(token.expires_at - requested_at) if token.expires_at else None,
        )
        return token

    def _background_done(
        self, key: CacheKey, entry: _Entry, task: asyncio.Task[AccessToken]
    ) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        entry.background_not_before = self._clock() + BACKGROUND_RETRY_SECONDS
        log.warning(
            "token_background_refresh_failed",
            namespace=key.namespace,
            identity=key.identity,
            host=key.host,
            kind=entry.kind,
            error=type(exc).__name__,
            message=str(exc),
        )

    def _event(self, event: str, kind: str) -> None:
        if self._observer is not None:
            self._observer.observe_token_event(event, kind)

    def _fetched(self, kind: str, started: float, error: str | None) -> None:
        if self._observer is not None:
            self._observer.observe_token_fetch(kind, time.perf_counter() - started, error)


def _expired(token: AccessToken, now: float) -> bool:
    left = token.seconds_left(now)
    return left is not None and left < EXPIRY_MARGIN_SECONDS


def _too_short(key: CacheKey, token: AccessToken, now: float) -> TokenEndpointError:
    left = token.seconds_left(now) or 0.0
    return TokenEndpointError(
        f"the token fetched for namespace '{key.namespace}' ({key.identity}) expires in "
        f"{max(left, 0.0):.0f} s, inside the last {EXPIRY_MARGIN_SECONDS:.0f} s in which "
        "lakegate sends no token; a subject token or file near its own expiry gives such "
        "tokens",
        namespace=key.namespace,
        source=key.identity,
        transient=True,
    )


def _stale_at(token: AccessToken, obtained_at: float) -> float:
    if token.expires_at is None:
        return float("inf")
    ttl = max(token.expires_at - obtained_at, 0.0)
    return token.expires_at - min(ttl / 2, MAX_STALE_WINDOW_SECONDS)


def _consume_exception(task: asyncio.Task[AccessToken]) -> None:
    if not task.cancelled():
        task.exception()


class CachedCredential:
    """A ``TokenProvider`` for one identity, its tokens kept in a shared ``TokenCache``."""

    def __init__(
        self,
        cache: TokenCache,
        key: CacheKey,
        fetch: Fetch,
        *,
        kind: str,
        namespace: str,
        on_invalidate: Callable[[], None] | None = None,
        management: Fetch | None = None,
    ) -> None:
        self._cache = cache
        self.key = key
        self._fetch = fetch
        self.kind = kind
        self.namespace = namespace
        self._on_invalidate = on_invalidate
        # An Entra principal's Azure management token, cached beside its Databricks token.
        self._management = management
        self._management_key = CacheKey(key.namespace, f"{key.identity}:azure-management", key.host)

    @property
    def auth_type(self) -> str:
        return self.kind

    async def token(self) -> str:
        return (await self._cache.get(self.key, self._fetch, kind=self.kind)).value

    async def azure_management_token(self) -> str | None:
        """The Azure management token (None unless the credential is an Entra one)."""
        if self._management is None:
            return None
        kind = f"{self.kind}:management"
        return (await self._cache.get(self._management_key, self._management, kind=kind)).value

    def invalidate(self, token: str) -> None:
        # Only the drop of the current token may trigger the hook: a storm of 401s for one
        # token re-reads a rotated secret once, not once per failed call.
        dropped = self._cache.invalidate(self.key, token)
        if dropped and self._management is not None:
            # The refusal may have been the management token's: it is fetched again too.
            self._cache.forget(lambda key: key == self._management_key)
        if dropped and self._on_invalidate is not None:
            self._on_invalidate()

    def __repr__(self) -> str:
        return (
            f"CachedCredential(kind={self.kind!r}, namespace={self.namespace!r}, "
            f"identity={self.key.identity!r}, host={self.key.host!r})"
        )
