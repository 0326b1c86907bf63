"""The one bounded TTL cache with a single load in flight per key.

Every value lakegate loads from a slow or rate-limited peer and reuses goes through it:
namespace resolutions, TokenReview answers, salted API-key checks, namespace labels, JWKS
documents and the informer's fallback reads. The single flight matters more than the cache:
a burst of requests for one cold key must cost one load, not one per request. A load runs as
a task of its own, so a caller that goes away (a client disconnect) does not cancel the
answer the others wait for.

``forget`` drops a key and detaches its load in flight: callers already waiting still get
that load's answer, later callers start a new one, and the detached answer is not kept,
because it may have read the world from before the change that caused the ``forget``.

Keys are chosen by the user of the cache (a SHA-256 of a token, never the token). Imports
nothing of lakegate, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# A loader answers the value and how many seconds it may be reused (0 or less: not at all).
Loader = Callable[[], Awaitable[tuple[V, float]]]


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "lakegate-cache",
    ) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self._max = max_entries
        self._clock = clock
        self._name = name
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[tuple[V, float]]] = {}
        # Every load not yet done, including those forget() detached, so aclose reaches all.
        self._tasks: set[asyncio.Task[tuple[V, float]]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> V | None:
        """The cached value if it is still fresh; never loads."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def get(self, key: K, load: Loader[V]) -> V:
        """The fresh cached value, or the result of ``load`` (shared by concurrent callers).

        An exception from ``load`` reaches every waiter and is not cached.
        """
        cached = self.peek(key)
        if cached is not None:
            return cached
        task = self._loading.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(_run(load), name=self._name)
            self._loading[key] = task
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._loaded(key, t))
        value, _ = await asyncio.shield(task)
        return value

    def forget(self, key: K) -> None:
        """Drop the key's value and detach its load in flight (see the module docstring)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def forget_where(self, matches: Callable[[K], bool]) -> None:
        """``forget`` every key, held or loading, for which ``matches`` is true."""
        for key in [k for k in (*self._entries, *self._loading) if matches(k)]:
            self.forget(key)

    def clear(self) -> None:
        self.forget_where(lambda _key: True)

    async def aclose(self) -> None:
        """Cancel loads still in flight, so none outlives the session it uses."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loading.clear()
        self._entries.clear()

    def _loaded(self, key: K, task: asyncio.Task[tuple[V, float]]) -> None:
        self._tasks.discard(task)
        if self._loading.get(key) is not task:
            return  # forgotten while it loaded: its answer may predate the change
        del self._loading[key]
        if task.cancelled() or task.exception() is not None:
            return
        value, ttl = task.result()
        if ttl > 0:
            self._entries[key] = (value, self._clock() + ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


async def _run(load: Loader[V]) -> tuple[V, float]:
    return await load()
