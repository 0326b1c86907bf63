"""No access token is sent in its last minute, whether cached or freshly fetched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.errors import TokenEndpointError
from gateway.identity.cache import EXPIRY_MARGIN_SECONDS, CacheKey, TokenCache
from tests.identity.fakes import Clock, Source

KEY = CacheKey("team-a", "federation:sa/etl", "https://dbc-1.example")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(clock: Clock) -> AsyncIterator[TokenCache]:
    made = TokenCache(clock=clock)
    yield made
    await made.aclose()


def test_the_margin_is_a_minute() -> None:
    assert EXPIRY_MARGIN_SECONDS == 60.0


@pytest.mark.parametrize(("left", "refetched"), [(61, False), (59, True), (41, True)])
async def test_a_cached_token_in_its_last_minute_is_replaced(
    cache: TokenCache, clock: Clock, left: int, refetched: bool
) -> None:
    source = Source(clock, ttl=600)
    await cache.get(KEY, source, kind="federation")
    clock.now += 600 - left
    # Inside the stale window a background refresh may start; what is served is what counts.
    served = await cache.get(KEY, source, kind="federation")
    assert (served.value == "tok-1") is not refetched


async def test_a_fetched_token_already_in_its_last_minute_is_not_served(
    cache: TokenCache, clock: Clock
) -> None:
    """Such a token is refused as a transient failure, and is not kept: the next call fetches."""
    short = Source(clock, ttl=30)
    with pytest.raises(TokenEndpointError, match="expires in 30 s") as raised:
        await cache.get(KEY, short, kind="federation")
    assert raised.value.transient
    assert "tok-1" not in str(raised.value)
    longer = Source(clock, ttl=600, prefix="ok")
    assert (await cache.get(KEY, longer, kind="federation")).value == "ok-1"
    assert (short.calls, longer.calls) == (1, 1)
