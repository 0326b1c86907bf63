"""The TTL cache behind TokenReview answers, salted key checks and namespace labels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.api.callers_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_misses_share_one_load() -> None:
    """Twenty callers asking for one missing key cause one load and get its value."""
    cache: TtlCache[str] = TtlCache(10)
    loads = 0
    release = asyncio.Event()

    async def load() -> tuple[str, float]:
        nonlocal loads
        loads += 1
        await release.wait()
        return "value", 30.0

    waiters = [asyncio.create_task(cache.get("k", load)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["value"] * 20
    assert loads == 1


async def test_entries_expire_after_their_ttl() -> None:
    """A value is reused until its TTL passes, then loaded again."""
    clock = Clock()
    cache: TtlCache[int] = TtlCache(10, clock=clock)
    calls = 0

    async def load() -> tuple[int, float]:
        nonlocal calls
        calls += 1
        return calls, 5.0

    assert await cache.get("k", load) == 1
    clock.now += 4.9
    assert await cache.get("k", load) == 1
    clock.now += 0.2
    assert await cache.get("k", load) == 2


async def test_a_zero_ttl_is_not_cached() -> None:
    """A loader answering ttl 0 is asked again next time."""
    cache: TtlCache[int] = TtlCache(10)
    calls = 0

    async def load() -> tuple[int, float]:
        nonlocal calls
        calls += 1
        return calls, 0.0

    assert [await cache.get("k", load), await cache.get("k", load)] == [1, 2]


async def test_failures_reach_every_waiter_and_are_not_cached() -> None:
    """A failing load raises for all who waited on it; the next call loads again."""
    cache: TtlCache[str] = TtlCache(10)
    attempts = 0

    async def load() -> tuple[str, float]:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise RuntimeError("unreachable")
        return "ok", 30.0

    results = await asyncio.gather(
        *(cache.get("k", load) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get("k", load) == "ok"
    assert attempts == 2


async def test_the_cache_is_bounded_oldest_first() -> None:
    """Beyond max_entries the least recently used entry goes."""
    cache: TtlCache[str] = TtlCache(2)

    def value(v: str) -> Callable[[], Awaitable[tuple[str, float]]]:
        async def load() -> tuple[str, float]:
            return v, 30.0

        return load

    await cache.get("a", value("a"))
    await cache.get("b", value("b"))
    assert cache.peek("a") == "a"  # a is now the most recent
    await cache.get("c", value("c"))
    assert len(cache) == 2
    assert cache.peek("b") is None
    assert cache.peek("a") == "a"


async def test_a_caller_that_goes_away_does_not_cancel_the_load() -> None:
    """Cancelling one waiter leaves the shared load running for the others."""
    cache: TtlCache[str] = TtlCache(10)
    release = asyncio.Event()

    async def load() -> tuple[str, float]:
        await release.wait()
        return "value", 30.0

    first = asyncio.create_task(cache.get("k", load))
    second = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "value"
