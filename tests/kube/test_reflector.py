"""The list-and-watch loop, driven by a scripted source: relists, fallback and backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from structlog.testing import capture_logs

from gateway.errors import KubernetesError
from gateway.kube.backoff import Backoff
from gateway.kube.cache import AccountCache
from gateway.kube.reflector import InformerOptions, Reflector
from gateway.kube.source import Listing, WatchEvent
from gateway.kube.status import KubeExpired, KubeForbidden, Target
from tests.kube.fakes import ScriptedSource, Sleeps, sa
from tests.support.clock import Clock

OPTIONS = InformerOptions(
    watch_timeout_seconds=5,
    resync_seconds=3600,
    fallback_ttl_seconds=30,
    forbidden_retry_seconds=300,
    backoff=Backoff(initial=1, maximum=8, jitter=0),
    min_watch_seconds=0,
)
TARGET = Target("serviceaccounts")


def expired() -> KubeExpired:
    return KubeExpired("too old", target=TARGET, http_status=410, reason="Expired")


def forbidden() -> KubeForbidden:
    return KubeForbidden(
        'serviceaccounts is forbidden: User "gw" cannot watch resource "serviceaccounts"',
        target=TARGET,
        http_status=403,
        reason="Forbidden",
    )


@asynccontextmanager
async def running(
    source: ScriptedSource,
    *,
    options: InformerOptions = OPTIONS,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[tuple[Reflector, AccountCache, Sleeps]]:
    cache, sleeps = AccountCache(), Sleeps()
    reflector = Reflector(source, cache, options, name="test", sleep=sleeps, clock=clock or Clock())
    task = asyncio.create_task(reflector.run())
    try:
        yield reflector, cache, sleeps
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until_idle(source: ScriptedSource) -> None:
    await asyncio.wait_for(source.idle.wait(), 2)


async def test_initial_list_fills_the_cache_and_sets_ready() -> None:
    """The first list fills the cache; the loop is ready and watches from the list's version."""
    source = ScriptedSource(lists=[Listing((sa("etl"),), "10")])
    async with running(source) as (reflector, cache, _):
        await until_idle(source)
        assert reflector.ready.is_set()
        assert cache.get("tenant-a", "etl") == sa("etl")
        assert source.watch_versions == ["10"]
        assert reflector.status().mode == "watching"


async def test_events_update_the_cache_and_the_version() -> None:
    """Added, relabelled and deleted accounts are reflected; the next watch resumes after them."""
    events = [
        WatchEvent("ADDED", "11", sa("new", "11")),
        WatchEvent("MODIFIED", "12", sa("etl", "12", labels={})),
        WatchEvent("DELETED", "13", sa("old", "13")),
        WatchEvent("BOOKMARK", "20"),
    ]
    source = ScriptedSource(
        lists=[Listing((sa("etl"), sa("old")), "10")],
        watches=[events],
    )
    async with running(source) as (_, cache, _):
        await until_idle(source)
        assert [a.name for a in cache.in_namespace("tenant-a")] == ["new"]
        assert source.watch_versions == ["10", "20"]


async def test_expired_watch_relists_at_once_and_replaces_the_cache() -> None:
    """A 410 relists without waiting; what vanished meanwhile leaves the cache."""
    source = ScriptedSource(
        lists=[Listing((sa("a"), sa("b")), "10"), Listing((sa("b", "30"),), "31")],
        watches=[expired()],
    )
    with capture_logs() as logs:
        async with running(source) as (reflector, cache, sleeps):
            await until_idle(source)
            assert [a.name for a in cache.in_namespace("tenant-a")] == ["b"]
            assert source.watch_versions == ["10", "31"]
            assert sleeps.delays == []
            assert reflector.status().relists == 1
    assert any(e["event"] == "kube_informer_relist" and e["reason"] == "expired" for e in logs)


async def test_repeated_expiry_backs_off() -> None:
    """410 after 410 without progress waits longer each time instead of spinning."""
    lists = [Listing((), str(i)) for i in range(4)]
    source = ScriptedSource(lists=lists, watches=[expired(), expired(), expired()])
    async with running(source) as (_, _, sleeps):
        await until_idle(source)
        assert sleeps.delays == [1, 2]


async def test_transient_errors_back_off_and_resume_from_the_last_version() -> None:
    """A failing watch backs off exponentially and resumes from where it was."""
    boom = KubernetesError("connection reset")
    source = ScriptedSource(
        lists=[Listing((), "10")],
        watches=[boom, boom, boom],
    )
    with capture_logs() as logs:
        async with running(source) as (reflector, _, sleeps):
            await until_idle(source)
            assert sleeps.delays == [1, 2, 4]
            assert source.watch_versions == ["10", "10", "10", "10"]
            assert reflector.status().last_error == "connection reset"
    assert sum(e["event"] == "kube_informer_error" for e in logs) == 3


async def test_failing_first_list_is_retried_before_ready() -> None:
    """Ready waits for a list that succeeds."""
    source = ScriptedSource(lists=[KubernetesError("down"), Listing((sa("etl"),), "5")])
    async with running(source) as (reflector, cache, sleeps):
        await until_idle(source)
        assert reflector.ready.is_set()
        assert sleeps.delays == [1]
        assert cache.count() == 1


async def test_forbidden_watch_falls_back_and_says_so() -> None:
    """A 403 on the watch switches to fallback: ready, logged, and visible in the status."""
    source = ScriptedSource(lists=[Listing((sa("etl"),), "10")], watches=[forbidden()])
    with capture_logs() as logs:
        async with running(source) as (reflector, _, sleeps):
            await until_idle(source)
            assert reflector.status().mode == "fallback"
            assert reflector.ready.is_set()
            assert sleeps.delays == [OPTIONS.forbidden_retry_seconds]
    fallback = [e for e in logs if e["event"] == "kube_informer_fallback"]
    assert len(fallback) == 1
    assert "cannot watch" in fallback[0]["error"]


async def test_fallback_reads_once_per_namespace_per_ttl() -> None:
    """Concurrent reads in fallback share one namespaced list, cached for the TTL."""
    clock = Clock()
    source = ScriptedSource(
        lists=[forbidden()],
        namespace_lists={
            "tenant-a": [Listing((sa("etl"),), "40"), Listing((), "41")],
        },
        list_delay=0.01,
    )
    async with running(source, clock=clock) as (reflector, cache, _):
        await asyncio.wait_for(reflector.ready.wait(), 2)
        await asyncio.gather(*(reflector.ensure_fresh("tenant-a") for _ in range(10)))
        assert source.list_calls.count("tenant-a") == 1
        assert cache.get("tenant-a", "etl") is not None
        clock.now = 29
        await reflector.ensure_fresh("tenant-a")
        assert source.list_calls.count("tenant-a") == 1
        clock.now = 31
        await reflector.ensure_fresh("tenant-a")
        assert cache.get("tenant-a", "etl") is None


async def test_forbidden_fallback_read_fails_closed() -> None:
    """If even the namespaced read is forbidden, the reader gets the 403, not an empty answer."""
    source = ScriptedSource(lists=[forbidden()], namespace_lists={"tenant-a": [forbidden()]})
    async with running(source) as (reflector, _, _):
        await asyncio.wait_for(reflector.ready.wait(), 2)
        with pytest.raises(KubeForbidden):
            await reflector.ensure_fresh("tenant-a")


async def test_closing_cancels_a_fallback_read_in_flight() -> None:
    """A namespaced read still waiting when the reflector closes is cancelled, not left over."""
    source = ScriptedSource(lists=[forbidden()], namespace_lists={"tenant-a": []})
    async with running(source) as (reflector, _, _):
        await until_idle(source)  # the loop's own relist now waits for good
        source.idle.clear()
        reader = asyncio.create_task(reflector.ensure_fresh("tenant-a"))
        await until_idle(source)  # and so does the namespace's read
        assert source.list_calls[-1] == "tenant-a"
        await reflector.aclose()
        with pytest.raises(asyncio.CancelledError):
            await reader


async def test_watching_again_after_rbac_is_fixed() -> None:
    """After the forbidden retry interval a list that succeeds returns the loop to watching."""
    source = ScriptedSource(
        lists=[forbidden(), Listing((sa("etl"),), "50")],
    )
    async with running(source) as (reflector, cache, sleeps):
        await until_idle(source)
        assert sleeps.delays == [OPTIONS.forbidden_retry_seconds]
        assert reflector.status().mode == "watching"
        assert cache.count() == 1
        # While watching, reads are served from memory without a request.
        await reflector.ensure_fresh("tenant-a")
        assert source.list_calls == [None, None]


async def test_resync_relists_after_the_interval() -> None:
    """Past resync_seconds the loop lists again even though the watch is healthy."""
    ticks = iter(range(1_000))
    source = ScriptedSource(
        lists=[Listing((sa("a"),), "10"), Listing((sa("b"),), "20")],
        watches=[[]],
    )
    # Every reading of this clock is a second later: the first watch ends past the interval.
    options = InformerOptions(
        watch_timeout_seconds=5, resync_seconds=2, backoff=OPTIONS.backoff, min_watch_seconds=0
    )
    async with running(source, options=options, clock=lambda: float(next(ticks))) as (
        reflector,
        cache,
        _,
    ):
        await until_idle(source)
        assert [a.name for a in cache.in_namespace("tenant-a")] == ["b"]
        assert source.watch_versions == ["10", "20"]
        assert reflector.status().relists == 1


async def test_list_allowed_but_watch_forbidden_stays_in_fallback() -> None:
    """A relist that succeeds does not leave fallback while the watch is still refused."""
    source = ScriptedSource(
        lists=[Listing((sa("etl"),), "10"), Listing((sa("etl"),), "11")],
        watches=[forbidden(), forbidden()],
    )
    with capture_logs() as logs:
        async with running(source) as (reflector, _, sleeps):
            await until_idle(source)
            assert reflector.status().mode == "fallback"
            assert sleeps.delays == [OPTIONS.forbidden_retry_seconds] * 2
    assert sum(e["event"] == "kube_informer_fallback" for e in logs) == 1
    assert not any(e["event"] == "kube_informer_watching" and e["recovered"] for e in logs)
