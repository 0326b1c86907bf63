"""A small bounded TTL cache with one load in flight per key.

Used for TokenReview answers, salted API-key checks and namespace labels. Keys are chosen by
the user of the cache (a SHA-256 of a token, never the token). The lock-free single flight
matters more than the cache: a burst of requests carrying one new token must cost one
TokenReview, not one per request. A load runs as its own task, so a caller that goes away
(client disconnect) does not cancel the answer the others are waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

# A loader answers the value and how many seconds it may be reused (0 or less: not at all).
Loader = Callable[[], Awaitable[tuple[V, float]]]


class TtlCache(Generic[V]):
    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[tuple[V, float]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: str) -> V | None:
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

    async def get(self, key: str, load: Loader[V]) -> V:
        """The fresh cached value, or the result of ``load`` (shared by concurrent callers).

        An exception from ``load`` reaches every waiter and is not cached.
        """
        cached = self.peek(key)
        if cached is not None:
            return cached
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load), name="lakegate-callers-cache")
            self._loading[key] = task
            task.add_done_callback(lambda t: self._loaded(key, t))
        value, _ = await asyncio.shield(task)
        return value

    async def _load(self, key: str, load: Loader[V]) -> tuple[V, float]:
        return await load()

    def _loaded(self, key: str, task: asyncio.Task[tuple[V, float]]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if task.cancelled() or task.exception() is not None:
            return
        value, ttl = task.result()
        if ttl > 0:
            self._entries[key] = (value, self._clock() + ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def aclose(self) -> None:
        """Cancel loads still in flight, so none outlives the session it uses."""
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._entries.clear()
