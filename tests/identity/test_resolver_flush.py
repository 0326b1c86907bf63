"""NamespaceResolver.flush: a tenant policy reload makes a changed identity take effect at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.identity.builders import Builder
from gateway.identity.cache import TokenCache
from gateway.identity.resolver import HoldsResolutions, NamespaceResolver
from gateway.settings import Settings, TenantsSettings

PROD = "https://prod.cloud.databricks.com"
OLD = {"type": "pat", "token": "dapi-old-0123456789abcdef"}
NEW = {"type": "oauth-m2m", "client_id": "sp-new", "client_secret": "dose-new-0123456789"}


def tenants(team_a: dict[str, str], team_b: dict[str, str]) -> TenantsSettings:
    return TenantsSettings.model_validate(
        {
            "defaults": {"workspace": "prod"},
            "namespaces": {"team-a": {"identity": team_a}, "team-b": {"identity": team_b}},
        }
    )


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate(
        {"workspaces": {"prod": {"host": PROD}}, "tenants": tenants(OLD, OLD).model_dump()}
    )


@pytest.fixture
async def resolver(
    session: aiohttp.ClientSession, cache: TokenCache, settings: Settings
) -> AsyncIterator[NamespaceResolver]:
    made = NamespaceResolver(
        settings, builder=Builder(session, cache, settings.identity, None), environ={}
    )
    yield made
    await made.aclose()


async def test_flush_makes_the_next_resolution_read_the_new_policy(
    resolver: NamespaceResolver, settings: Settings
) -> None:
    """Cached, a resolution outlives a policy change; flushed, the next one follows it, and a
    namespace not flushed keeps its cached answer."""
    before = {ns: (await resolver.resolve(ns)).kind for ns in ("team-a", "team-b")}
    object.__setattr__(settings, "tenants", tenants(NEW, NEW))
    assert (await resolver.resolve("team-a")).kind == before["team-a"]  # still cached
    resolver.flush({"team-a"})
    assert (await resolver.resolve("team-a")).kind != before["team-a"]
    assert (await resolver.resolve("team-b")).kind == before["team-b"]
    resolver.flush(None)
    assert (await resolver.resolve("team-b")).kind != before["team-b"]


async def test_cached_answers_only_what_resolve_holds(resolver: NamespaceResolver) -> None:
    """cached asks no one: nothing before the first resolution or after a flush, else the
    very resolution resolve would answer; the run service finds it through HoldsResolutions."""
    assert isinstance(resolver, HoldsResolutions)
    assert resolver.cached("team-a") is None
    resolved = await resolver.resolve("team-a")
    assert resolver.cached("team-a") is resolved
    assert resolver.cached("team-b") is None
    resolver.flush({"team-a"})
    assert resolver.cached("team-a") is None
