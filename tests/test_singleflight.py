"""The one single-flight TTL cache: sharing, expiry, bounds, forgetting, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.singleflight import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_misses_share_one_load() -> None:
    """Twenty callers asking for one missing key cause one load and get its value."""
    cache: TtlCache[str, str] = TtlCache(10)
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
    cache: TtlCache[str, int] = TtlCache(10, clock=clock)
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
    cache: TtlCache[str, int] = TtlCache(10)
    calls = 0

    async def load() -> tuple[int, float]:
        nonlocal calls
        calls += 1
        return calls, 0.0

    assert [await cache.get("k", load), await cache.get("k", load)] == [1, 2]


async def test_failures_reach_every_waiter_and_are_not_cached() -> None:
    """A failing load raises for all who waited on it; the next call loads again."""
    cache: TtlCache[str, str] = TtlCache(10)
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
    cache: TtlCache[str, str] = TtlCache(2)

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
    cache: TtlCache[str, str] = TtlCache(10)
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


async def test_forget_detaches_the_load_in_flight() -> None:
    """After forget, waiters already in get the old load; later callers start a new one,
    and the detached answer is never kept."""
    cache: TtlCache[str, str] = TtlCache(10)
    release_old = asyncio.Event()
    loads: list[str] = []

    async def old() -> tuple[str, float]:
        loads.append("old")
        await release_old.wait()
        return "old", 30.0

    async def new() -> tuple[str, float]:
        loads.append("new")
        return "new", 30.0

    early = asyncio.create_task(cache.get("k", old))
    await asyncio.sleep(0)
    cache.forget("k")
    assert await cache.get("k", new) == "new"
    release_old.set()
    assert await early == "old"
    assert cache.peek("k") == "new"
    assert loads == ["old", "new"]


async def test_forget_where_drops_matching_keys_only() -> None:
    """forget_where drops held values by predicate and leaves the others."""
    cache: TtlCache[tuple[str, int], int] = TtlCache(10)

    async def one() -> tuple[int, float]:
        return 1, 30.0

    for key in [("a", 1), ("a", 2), ("b", 1)]:
        await cache.get(key, one)
    cache.forget_where(lambda key: key[0] == "a")
    assert [cache.peek(k) for k in [("a", 1), ("a", 2), ("b", 1)]] == [None, None, 1]


async def test_aclose_cancels_detached_loads_too() -> None:
    """aclose cancels every load still running, also one that forget detached."""
    cache: TtlCache[str, str] = TtlCache(10)
    never = asyncio.Event()

    async def hang() -> tuple[str, float]:
        await never.wait()
        return "x", 30.0

    waiter = asyncio.create_task(cache.get("k", hang))
    await asyncio.sleep(0)
    cache.forget("k")
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter


def test_a_cache_needs_room_for_one_entry() -> None:
    """max_entries below one is refused."""
    with pytest.raises(ValueError, match="at least one"):
        TtlCache[str, str](0)
