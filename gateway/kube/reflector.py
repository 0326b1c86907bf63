"""One list-and-watch loop: the ServiceAccounts one label selector picks, in one scope.

The loop lists, then watches from the list's resourceVersion with bookmarks and a finite
timeout, resuming from the last version it saw. On 410 Gone (an HTTP 410 and an in-stream
ERROR 410 alike) it lists again and replaces its share of the cache in one step, so readers
never see an empty cache in between. Every ``resync_seconds`` it relists anyway, healing any
event a broken connection may have lost. If RBAC forbids the list or the watch it falls back
to reading each namespace on demand (``ensure_fresh``): one read in flight per namespace,
its answer good for ``fallback_ttl_seconds`` (a ``TtlCache`` of reads); it tries watching
again every ``forbidden_retry_seconds``. Other errors back off with jitter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from gateway.errors import KubernetesError
from gateway.kube.backoff import Backoff
from gateway.kube.cache import AccountCache
from gateway.kube.source import AccountSource, Listing, WatchEvent
from gateway.kube.status import KubeExpired, KubeForbidden
from gateway.logs import get_logger
from gateway.singleflight import TtlCache

log = get_logger(__name__)

Mode = Literal["starting", "watching", "fallback"]
Sleep = Callable[[float], Awaitable[None]]
# Namespaces whose last fallback read is remembered; past it the oldest is read again.
MAX_FALLBACK_NAMESPACES = 10_000


@dataclass(frozen=True, slots=True)
class InformerOptions:
    """Timing of the list-and-watch loops; the future ``kubernetes.informer`` settings."""

    watch_timeout_seconds: int = 300
    resync_seconds: float = 900.0
    fallback_ttl_seconds: float = 30.0
    forbidden_retry_seconds: float = 300.0
    backoff: Backoff = field(default_factory=Backoff)
    # A watch that ends sooner than this without a single event counts as a failure, so a
    # server that closes streams at once is not hammered in a tight loop.
    min_watch_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.watch_timeout_seconds < 1:
            raise ValueError("watch_timeout_seconds must be at least 1")
        if min(self.resync_seconds, self.fallback_ttl_seconds, self.forbidden_retry_seconds) <= 0:
            raise ValueError("informer intervals must be positive")


@dataclass(frozen=True, slots=True)
class ReflectorStatus:
    selector: str
    namespace: str | None
    mode: Mode
    synced: bool
    resource_version: str | None
    objects: int
    relists: int
    last_error: str | None


class Reflector:
    """Feeds one source's share of the cache; ``run()`` is the loop, owned by the informer."""

    def __init__(
        self,
        source: AccountSource,
        cache: AccountCache,
        options: InformerOptions,
        *,
        name: str,
        on_ready: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self._source = source
        self._cache = cache
        self._options = options
        self._on_ready = on_ready
        self._clock = clock
        self._sleep = sleep
        self.mode: Mode = "starting"
        self.ready = asyncio.Event()
        self._rv = ""
        self._synced = False
        self._listed_at = 0.0
        self._relists = 0
        self._last_error: str | None = None
        # Fallback reads by namespace: the value is the number of accounts read, and a fresh
        # entry means the cache holds the namespace as it was less than a TTL ago.
        self._reads: TtlCache[str, int] = TtlCache(
            MAX_FALLBACK_NAMESPACES, clock=clock, name="kube-fallback-read"
        )

    @property
    def _scope(self) -> str:
        return self._source.namespace or "*"

    def status(self) -> ReflectorStatus:
        return ReflectorStatus(
            selector=self._source.selector.text(),
            namespace=self._source.namespace,
            mode=self.mode,
            synced=self._synced,
            resource_version=self._rv or None,
            objects=self._cache.count(self.name),
            relists=self._relists,
            last_error=self._last_error,
        )

    def covers(self, namespace: str) -> bool:
        return self._source.namespace is None or self._source.namespace == namespace

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                progressed = await self._watch()
                failures = 0 if progressed else failures + 1
                if failures:
                    await self._sleep(self._options.backoff.delay(failures - 1))
                if self._clock() - self._listed_at >= self._options.resync_seconds:
                    need_list = True
                    self._log_relist("resync")
            except KubeExpired as exc:
                need_list = True
                self._log_relist("expired", exc)
                # The first 410 relists at once; 410s in a row without progress back off.
                if failures:
                    await self._sleep(self._options.backoff.delay(failures - 1))
                failures += 1
            except KubeForbidden as exc:
                self._enter_fallback(exc)
                await self._sleep(self._options.forbidden_retry_seconds)
                need_list = True
            except KubernetesError as exc:
                failures += 1
                await self._back_off(exc, failures)
            except Exception as exc:
                # A bug here must not silently end discovery for the life of the process.
                log.exception("kube_informer_failed", selector=self._source.selector.text())
                failures += 1
                await self._back_off(exc, failures)

    async def _back_off(self, exc: Exception, failures: int) -> None:
        delay = self._options.backoff.delay(failures - 1)
        self._last_error = str(exc)
        log.warning(
            "kube_informer_error",
            selector=self._source.selector.text(),
            scope=self._scope,
            error=str(exc),
            retry_in_seconds=round(delay, 3),
        )
        await self._sleep(delay)

    async def _list(self) -> None:
        listing: Listing = await self._source.list()
        self._cache.replace(self.name, listing.accounts)
        self._rv = listing.resource_version
        self._listed_at = self._clock()
        self._synced = True
        self._last_error = None
        if self.mode == "starting":
            self._set_watching(recovered=False)
        # Out of fallback only once a watch is accepted (_watch_opened): RBAC may allow the
        # list and still refuse the watch, and then reads must keep going to the API server.
        log.debug(
            "kube_informer_listed",
            selector=self._source.selector.text(),
            scope=self._scope,
            count=len(listing.accounts),
            resource_version=listing.resource_version,
        )
        self._mark_ready()

    def _set_watching(self, *, recovered: bool) -> None:
        log.info(
            "kube_informer_watching",
            selector=self._source.selector.text(),
            scope=self._scope,
            recovered=recovered,
        )
        self.mode = "watching"
        self._reads.clear()

    def _watch_opened(self) -> None:
        if self.mode == "fallback":
            self._set_watching(recovered=True)

    async def _watch(self) -> bool:
        """One watch stream; True when it made progress (events, or ran its course)."""
        started = self._clock()
        seen = await self._source.watch(
            self._rv,
            timeout_seconds=self._options.watch_timeout_seconds,
            on_event=self._on_event,
            on_open=self._watch_opened,
        )
        return seen > 0 or self._clock() - started >= self._options.min_watch_seconds

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource_version:
            self._rv = event.resource_version
        account = event.account
        if account is None:
            return
        # A MODIFIED object that no longer matches has left the selection, as if deleted.
        if event.type == "DELETED" or not self._source.selector.matches(account.labels):
            self._cache.delete(self.name, account.key)
        else:
            self._cache.upsert(self.name, account)

    def _log_relist(self, reason: str, exc: Exception | None = None) -> None:
        self._relists += 1
        log.info(
            "kube_informer_relist",
            selector=self._source.selector.text(),
            scope=self._scope,
            reason=reason,
            error=str(exc) if exc else None,
        )

    def _enter_fallback(self, exc: KubeForbidden) -> None:
        self._last_error = exc.message
        if self.mode != "fallback":
            log.warning(
                "kube_informer_fallback",
                selector=self._source.selector.text(),
                scope=self._scope,
                error=exc.message,
                ttl_seconds=self._options.fallback_ttl_seconds,
                retry_watch_in_seconds=self._options.forbidden_retry_seconds,
            )
        self.mode = "fallback"
        self._synced = False
        # Whatever the list brought in is as old as the list; fallback reads start afresh.
        self._reads.clear()
        self._mark_ready()

    def _mark_ready(self) -> None:
        if not self.ready.is_set():
            self.ready.set()
            self._on_ready()

    # --- reads while not watching -------------------------------------------------------

    async def ensure_fresh(self, namespace: str) -> None:
        """Bring ``namespace`` up to date when the watch cannot (fallback, or not yet listed).

        One read per namespace is in flight however many callers wait; its result serves every
        caller for ``fallback_ttl_seconds``. A refused read raises to the callers
        (``KubeForbidden`` if even a namespaced list is forbidden): fail closed.
        """
        if self.mode == "watching" or not self.covers(namespace):
            return
        await self._reads.get(namespace, lambda: self._read(namespace))

    async def _read(self, namespace: str) -> tuple[int, float]:
        listing = await self._source.list(namespace)
        if self.mode == "watching":
            # The watch came (back) while we read; its view is at least as new as ours.
            return 0, 0.0
        self._cache.replace(self.name, listing.accounts, namespace=namespace)
        log.debug(
            "kube_informer_fallback_read",
            selector=self._source.selector.text(),
            namespace=namespace,
            count=len(listing.accounts),
        )
        return len(listing.accounts), self._options.fallback_ttl_seconds

    async def aclose(self) -> None:
        """Cancel fallback reads still in flight, so none outlives the client they use."""
        await self._reads.aclose()
