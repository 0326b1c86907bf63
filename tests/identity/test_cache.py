"""The token cache: refresh ahead of expiry, single flight, compare-and-invalidate, LRU bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from gateway.databricks.auth import TokenProvider
from gateway.errors import TokenEndpointError
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.metrics import Metrics
from tests.identity.fakes import Clock, Observer, Source, settle

KEY = CacheKey("team-a", "oauth-m2m:secret/databricks-oauth", "https://dbc-1.example")
OTHER = CacheKey("team-b", "oauth-m2m:secret/databricks-oauth", "https://dbc-1.example")
KIND = "oauth-m2m"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
async def cache(clock: Clock, observer: Observer) -> AsyncIterator[TokenCache]:
    made = TokenCache(clock=clock, observer=observer)
    yield made
    await made.aclose()


def key(n: int) -> CacheKey:
    return CacheKey(f"ns-{n}", "federation:sa/etl", "https://dbc-1.example")


# --- fresh, stale, expired ------------------------------------------------------------------


async def test_a_fresh_token_is_fetched_once_then_served(
    cache: TokenCache, clock: Clock, observer: Observer
) -> None:
    """The first call fetches; later calls inside the fresh window are hits."""
    source = Source(clock)
    tokens = [(await cache.get(KEY, source, kind=KIND)).value for _ in range(3)]
    assert tokens == ["tok-1"] * 3
    assert source.calls == 1
    assert observer.events == {("miss", KIND): 1, ("refresh", KIND): 1, ("hit", KIND): 2}
    assert observer.fetches == [(KIND, None)]


@pytest.mark.parametrize(
    ("ttl", "elapsed", "refreshed"),
    [
        (3600, 3600 - 20 * 60 - 1, False),  # an hour's token: fresh until 20 min are left
        (3600, 3600 - 20 * 60 + 1, True),
        (600, 299, False),  # a 10-minute token: fresh for half its life
        (600, 301, True),
    ],
)
async def test_a_stale_token_is_served_while_one_refresh_runs_behind_it(
    cache: TokenCache, clock: Clock, ttl: int, elapsed: int, refreshed: bool
) -> None:
    """Inside min(TTL/2, 20 min) of expiry the old token is served and refreshed once."""
    source = Source(clock, ttl=ttl)
    await cache.get(KEY, source, kind=KIND)
    clock.now += elapsed
    served = await asyncio.gather(*(cache.get(KEY, source, kind=KIND) for _ in range(20)))
    assert {t.value for t in served} == {"tok-1"}
    await settle()
    assert source.calls == (2 if refreshed else 1)
    assert (await cache.get(KEY, source, kind=KIND)).value == ("tok-2" if refreshed else "tok-1")


async def test_a_nearly_expired_token_is_replaced_before_use(
    cache: TokenCache, clock: Clock
) -> None:
    """In its last minute the caller waits for a new token rather than use the old one."""
    source = Source(clock)
    await cache.get(KEY, source, kind=KIND)
    clock.now += 3600 - 59
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-2"


async def test_a_token_without_expiry_is_never_refreshed(cache: TokenCache, clock: Clock) -> None:
    """A PAT stays cached for ever: no stale window, no expiry."""
    source = Source(clock, ttl=None)
    await cache.get(KEY, source, kind="pat")
    clock.now += 10 * 365 * 86400
    assert (await cache.get(KEY, source, kind="pat")).value == "tok-1"
    await settle()
    assert source.calls == 1


async def test_a_failed_background_refresh_backs_off_a_minute(
    cache: TokenCache, clock: Clock, observer: Observer
) -> None:
    """The valid token keeps being served; the next background try waits 60 s."""
    source = Source(clock)
    await cache.get(KEY, source, kind=KIND)
    clock.now += 3000
    source.errors.append(TokenEndpointError("down", namespace="team-a", transient=True))
    with capture_logs() as logs:
        assert (await cache.get(KEY, source, kind=KIND)).value == "tok-1"
        await settle()
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "token_background_refresh_failed"
    ]
    assert observer.fetches[-1] == (KIND, "TokenEndpointError")
    clock.now += 59
    await cache.get(KEY, source, kind=KIND)
    await settle()
    assert source.calls == 2
    clock.now += 2
    await cache.get(KEY, source, kind=KIND)
    await settle()
    assert source.calls == 3
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-3"


# --- single flight --------------------------------------------------------------------------


async def test_concurrent_callers_of_a_cold_key_share_one_fetch(
    cache: TokenCache, clock: Clock
) -> None:
    """However many callers wait, one fetch runs for a key."""
    source = Source(clock)
    gate = source.hold()
    waiters = [asyncio.ensure_future(cache.get(KEY, source, kind=KIND)) for _ in range(500)]
    await asyncio.sleep(0.01)
    gate.set()
    assert {t.value for t in await asyncio.gather(*waiters)} == {"tok-1"}
    assert source.calls == 1


async def test_2000_callers_over_100_cold_keys_cost_exactly_100_fetches(
    cache: TokenCache, clock: Clock, observer: Observer
) -> None:
    """Single flight holds per key under a burst: one fetch per key, each caller its own token."""
    sources = [Source(clock, prefix=f"ns-{n}") for n in range(100)]

    async def call(i: int) -> tuple[int, str]:
        n = i % 100
        # A yield first, so the callers of one key interleave with those of the others.
        await asyncio.sleep(0)
        return n, (await cache.get(key(n), sources[n], kind="federation")).value

    results = await asyncio.gather(*(call(i) for i in range(2000)))
    assert all(value == f"ns-{n}-1" for n, value in results)
    assert sum(s.calls for s in sources) == 100
    assert observer.events[("refresh", "federation")] == 100
    assert len(cache) == 100


async def test_a_fetch_error_reaches_every_waiter_and_the_next_call_retries(
    cache: TokenCache, clock: Clock
) -> None:
    """All waiters of one refresh get its error; a later call starts a new fetch."""
    source = Source(clock)
    gate = source.hold()
    source.errors.append(TokenEndpointError("refused", namespace="team-a"))
    waiters = [asyncio.ensure_future(cache.get(KEY, source, kind=KIND)) for _ in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, TokenEndpointError) for o in outcomes)
    assert source.calls == 1
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-2"


async def test_a_waiter_that_gives_up_does_not_cancel_the_refresh(
    cache: TokenCache, clock: Clock
) -> None:
    """One caller's timeout leaves the shared refresh running for the others."""
    source = Source(clock)
    gate = source.hold()
    impatient = asyncio.ensure_future(asyncio.wait_for(cache.get(KEY, source, kind=KIND), 0.01))
    patient = asyncio.ensure_future(cache.get(KEY, source, kind=KIND))
    with pytest.raises(TimeoutError):
        await impatient
    gate.set()
    assert (await patient).value == "tok-1"
    assert source.calls == 1


# --- invalidation ---------------------------------------------------------------------------


async def test_invalidate_drops_only_the_token_that_failed(
    cache: TokenCache, clock: Clock, observer: Observer
) -> None:
    """Compare-and-invalidate: a late refusal of tok-1 does not drop tok-2."""
    source = Source(clock)
    await cache.get(KEY, source, kind=KIND)
    assert cache.invalidate(KEY, "tok-1")
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-2"
    assert not cache.invalidate(KEY, "tok-1")
    assert not cache.invalidate(OTHER, "tok-2")
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-2"
    assert observer.events[("invalidated", KIND)] == 1


async def test_a_storm_of_refusals_costs_one_fetch(cache: TokenCache, clock: Clock) -> None:
    """Fifty callers refused with the same token trigger a single refresh."""
    source = Source(clock)
    await cache.get(KEY, source, kind=KIND)

    async def refused_then_retry() -> str:
        cache.invalidate(KEY, "tok-1")
        return (await cache.get(KEY, source, kind=KIND)).value

    assert set(await asyncio.gather(*(refused_then_retry() for _ in range(50)))) == {"tok-2"}
    assert source.calls == 2


async def test_forget_drops_the_entries_a_predicate_picks(cache: TokenCache, clock: Clock) -> None:
    """Forgetting a namespace refetches its tokens and leaves the others cached."""
    source, other = Source(clock), Source(clock, prefix="other")
    await cache.get(KEY, source, kind=KIND)
    await cache.get(OTHER, other, kind=KIND)
    assert cache.forget(lambda k: k.namespace == "team-a") == 1
    assert len(cache) == 1
    assert (await cache.get(KEY, source, kind=KIND)).value == "tok-2"
    assert (await cache.get(OTHER, other, kind=KIND)).value == "other-1"


# --- the size bound -------------------------------------------------------------------------


async def test_the_least_recently_used_entry_is_evicted(clock: Clock, observer: Observer) -> None:
    """Past max_entries the entry used longest ago goes; a recently used one stays."""
    cache = TokenCache(max_entries=2, clock=clock, observer=observer)
    sources = [Source(clock, prefix=f"k{n}") for n in range(3)]
    await cache.get(key(0), sources[0], kind=KIND)
    await cache.get(key(1), sources[1], kind=KIND)
    await cache.get(key(0), sources[0], kind=KIND)
    await cache.get(key(2), sources[2], kind=KIND)
    assert len(cache) == 2
    assert observer.events[("evicted", KIND)] == 1
    await cache.get(key(0), sources[0], kind=KIND)
    await cache.get(key(1), sources[1], kind=KIND)
    assert [s.calls for s in sources] == [1, 2, 1]
    await cache.aclose()


async def test_evicting_an_entry_does_not_cancel_its_refresh(clock: Clock) -> None:
    """Waiters of an evicted key's refresh still get their token."""
    cache = TokenCache(max_entries=1, clock=clock)
    first, second = Source(clock, prefix="first"), Source(clock, prefix="second")
    gate = first.hold()
    waiter = asyncio.ensure_future(cache.get(key(0), first, kind=KIND))
    await asyncio.sleep(0.01)
    assert (await cache.get(key(1), second, kind=KIND)).value == "second-1"
    gate.set()
    assert (await waiter).value == "first-1"
    assert len(cache) == 1
    await cache.aclose()


# --- shutdown and secrecy -------------------------------------------------------------------


async def test_aclose_cancels_refreshes_in_flight(cache: TokenCache, clock: Clock) -> None:
    """Closing the cache stops its refreshes; their waiters see the cancellation."""
    source = Source(clock)
    source.hold()
    waiter = asyncio.ensure_future(cache.get(KEY, source, kind=KIND))
    await asyncio.sleep(0.01)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(cache) == 0
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get(KEY, source, kind=KIND)


async def test_tokens_stay_out_of_logs_and_reprs(cache: TokenCache, clock: Clock) -> None:
    """Refresh, invalidation and failure logs, and every repr, carry no token value."""
    source = Source(clock, prefix="secret-token-value")
    credential = CachedCredential(cache, KEY, source, kind=KIND, namespace="team-a")
    with capture_logs() as logs:
        credential.invalidate(await credential.token())
        await credential.token()
        source.errors.append(TokenEndpointError("down", namespace="team-a"))
        clock.now += 3000
        await credential.token()
        await settle()
    assert {"token_refreshed", "token_invalidated", "token_background_refresh_failed"} <= {
        e["event"] for e in logs
    }
    assert "secret-token-value" not in str(logs)
    assert "secret-token-value" not in repr(credential) + repr(cache)


# --- CachedCredential -----------------------------------------------------------------------


async def test_cached_credential_calls_its_hook_once_per_dropped_token(
    cache: TokenCache, clock: Clock
) -> None:
    """Only the refusal that drops the current token calls on_invalidate (to re-read a Secret)."""
    calls: list[None] = []
    source = Source(clock)
    credential = CachedCredential(
        cache, KEY, source, kind=KIND, namespace="team-a", on_invalidate=lambda: calls.append(None)
    )
    assert isinstance(credential, TokenProvider)
    token = await credential.token()
    for _ in range(5):
        credential.invalidate(token)
    assert len(calls) == 1
    assert await credential.token() == "tok-2"


async def test_metrics_count_cache_events_and_fetch_errors(clock: Clock) -> None:
    """gateway.metrics.Metrics serves as the observer: events and fetch errors are counted."""
    metrics = Metrics()
    cache = TokenCache(clock=clock, observer=metrics)
    source = Source(clock)
    await cache.get(KEY, source, kind=KIND)
    await cache.get(KEY, source, kind=KIND)
    cache.invalidate(KEY, "tok-1")
    source.errors.append(TokenEndpointError("refused", namespace="team-a"))
    with pytest.raises(TokenEndpointError):
        await cache.get(KEY, source, kind=KIND)
    await cache.aclose()

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    counted = "lakegate_token_cache_events_total"
    assert sample(counted, event="hit", kind=KIND) == 1
    assert sample(counted, event="miss", kind=KIND) == 2
    assert sample(counted, event="invalidated", kind=KIND) == 1
    assert sample(counted, event="refresh_error", kind=KIND) == 1
    assert sample("lakegate_token_endpoint_seconds_count", kind=KIND) == 2
    errors = "lakegate_token_endpoint_errors_total"
    assert sample(errors, kind=KIND, error="TokenEndpointError") == 1
