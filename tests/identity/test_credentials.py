"""PAT and OAuth M2M credentials: caching, refresh ahead of expiry, single-flight, invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.databricks.auth import TokenProvider
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable, TokenEndpointError
from gateway.identity.cache import CacheKey, TokenCache
from gateway.identity.credentials import OAuthM2MCredential, PatCredential
from tests.databricks.scripted import Reply, ScriptedServer
from tests.identity.fakes import Clock, settle

TOKEN_PATH = "/oidc/v1/token"
DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
SECRET = "dose0123456789abcdef0123"
PAT = "dapi0123456789abcdef0123456789ab"


def grant(value: str, expires_in: int = 3600, delay: float = 0.0) -> Reply:
    body = {"access_token": value, "token_type": "Bearer", "expires_in": expires_in}
    return Reply(json=body, delay=delay)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(
    session: aiohttp.ClientSession, server: ScriptedServer, clock: Clock
) -> AsyncIterator[Callable[..., OAuthM2MCredential]]:
    made: list[OAuthM2MCredential] = []

    def build(*, discover: bool = False) -> OAuthM2MCredential:
        cred = OAuthM2MCredential(
            session,
            server.url,
            "sp-1",
            SECRET,
            namespace="team-a",
            token_endpoint=None if discover else server.url + TOKEN_PATH,
            retry=RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02),
            clock=clock,
        )
        made.append(cred)
        return cred

    yield build
    for cred in made:
        await cred.aclose()


# --- PAT ------------------------------------------------------------------------------------


async def test_pat_serves_its_token() -> None:
    """A PAT is its own bearer token."""
    assert await PatCredential(PAT, namespace="team-a").token() == PAT


async def test_pat_survives_invalidation_and_logs_it() -> None:
    """A refused PAT cannot be refreshed; it keeps being served and the refusal is logged."""
    cred = PatCredential(PAT, namespace="team-a")
    with capture_logs() as logs:
        cred.invalidate(PAT)
    assert await cred.token() == PAT
    assert logs[0]["event"] == "pat_token_refused"
    assert logs[0]["namespace"] == "team-a"
    assert PAT not in str(logs)


def test_pat_repr_masks_the_token() -> None:
    """The token never shows in a repr."""
    assert PAT not in repr(PatCredential(PAT, namespace="team-a"))


def test_empty_pat_is_unavailable() -> None:
    """An empty secret is refused when the credential is built, naming the namespace."""
    with pytest.raises(CredentialUnavailable) as raised:
        PatCredential("  ", namespace="team-a")
    assert raised.value.namespace == "team-a"


def test_credentials_are_token_providers(session: aiohttp.ClientSession) -> None:
    """Both kinds satisfy the Jobs client's TokenProvider protocol."""
    assert isinstance(PatCredential(PAT), TokenProvider)
    assert isinstance(OAuthM2MCredential(session, "https://h", "id", SECRET), TokenProvider)


# --- OAuth M2M: fetching and caching --------------------------------------------------------


async def test_first_token_is_fetched_then_cached(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """One token request serves every call while the token is fresh."""
    server.script("POST", TOKEN_PATH, grant("at-1"))
    cred = make()
    assert [await cred.token() for _ in range(3)] == ["at-1"] * 3
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_token_endpoint_is_discovered_once(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """Without a configured endpoint the credential asks OIDC discovery, once."""
    endpoint = f"{server.url}/oidc/v1/token"
    server.always("GET", DISCOVERY, Reply(json={"token_endpoint": endpoint}))
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=60), grant("at-2"))
    cred = make(discover=True)
    await cred.token()
    cred.invalidate("at-1")
    assert await cred.token() == "at-2"
    assert len(server.requests("GET", DISCOVERY)) == 1


async def test_concurrent_callers_share_one_refresh(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """However many callers wait, one token request is in flight (single-flight)."""
    server.script("POST", TOKEN_PATH, grant("at-1", delay=0.05))
    cred = make()
    tokens = await asyncio.gather(*(cred.token() for _ in range(50)))
    assert set(tokens) == {"at-1"}
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_a_caller_giving_up_does_not_cancel_the_refresh(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """One waiter's timeout leaves the shared refresh running for the others."""
    server.script("POST", TOKEN_PATH, grant("at-1", delay=0.1))
    cred = make()
    impatient = asyncio.ensure_future(asyncio.wait_for(cred.token(), 0.01))
    patient = asyncio.ensure_future(cred.token())
    with pytest.raises(TimeoutError):
        await impatient
    assert await patient == "at-1"
    assert len(server.requests("POST", TOKEN_PATH)) == 1


# --- OAuth M2M: refresh ahead of expiry -----------------------------------------------------


async def test_stale_token_is_served_while_refreshed_in_the_background(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer, clock: Clock
) -> None:
    """Inside min(TTL/2, 20 min) of expiry the old token is served and a new one fetched."""
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=3600), grant("at-2"))
    cred = make()
    await cred.token()
    clock.now += 3600 - 20 * 60 + 1
    assert await asyncio.gather(*(cred.token() for _ in range(10))) == ["at-1"] * 10
    await settle()
    assert await cred.token() == "at-2"
    assert len(server.requests("POST", TOKEN_PATH)) == 2


async def test_short_lived_tokens_go_stale_at_half_life(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer, clock: Clock
) -> None:
    """A 10-minute token is fresh for 5 minutes, then refreshed in the background."""
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=600), grant("at-2"))
    cred = make()
    await cred.token()
    clock.now += 299
    await cred.token()
    await settle()
    assert len(server.requests("POST", TOKEN_PATH)) == 1
    clock.now += 2
    assert await cred.token() == "at-1"
    await settle()
    assert len(server.requests("POST", TOKEN_PATH)) == 2


async def test_nearly_expired_token_is_refreshed_before_use(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer, clock: Clock
) -> None:
    """With under 40 s left the caller waits for a new token rather than use the old one."""
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=3600), grant("at-2"))
    cred = make()
    await cred.token()
    clock.now += 3600 - 39
    assert await cred.token() == "at-2"


async def test_failed_background_refresh_keeps_the_token_and_backs_off(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer, clock: Clock
) -> None:
    """A background failure is logged, the valid token still served, no retry for a minute."""
    server.script("POST", TOKEN_PATH, grant("at-1"))
    server.always("POST", TOKEN_PATH, Reply(400, json={"error": "invalid_request"}))
    cred = make()
    await cred.token()
    clock.now += 3000
    with capture_logs() as logs:
        assert await cred.token() == "at-1"
        await settle()
    assert "token_background_refresh_failed" in [e["event"] for e in logs]
    clock.now += 30
    assert await cred.token() == "at-1"
    await settle()
    assert len(server.requests("POST", TOKEN_PATH)) == 2
    clock.now += 31
    await cred.token()
    await settle()
    assert len(server.requests("POST", TOKEN_PATH)) == 3


# --- OAuth M2M: invalidation and failure ----------------------------------------------------


async def test_invalidating_the_current_token_fetches_a_new_one(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """After Databricks refuses a token, the next call gets a fresh one."""
    server.script("POST", TOKEN_PATH, grant("at-1"), grant("at-2"))
    cred = make()
    await cred.token()
    cred.invalidate("at-1")
    assert await cred.token() == "at-2"


async def test_invalidating_an_old_token_keeps_the_new_one(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """Compare-and-invalidate: a late refusal of at-1 does not drop at-2."""
    server.script("POST", TOKEN_PATH, grant("at-1"), grant("at-2"), grant("at-3"))
    cred = make()
    await cred.token()
    cred.invalidate("at-1")
    await cred.token()
    cred.invalidate("at-1")
    assert await cred.token() == "at-2"
    assert len(server.requests("POST", TOKEN_PATH)) == 2


async def test_a_storm_of_refusals_costs_one_refresh(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """Fifty callers refused with the same token trigger a single token request."""
    server.script("POST", TOKEN_PATH, grant("at-1"), grant("at-2", delay=0.02))
    cred = make()
    await cred.token()

    async def refused_then_retry() -> str:
        cred.invalidate("at-1")
        return await cred.token()

    assert set(await asyncio.gather(*(refused_then_retry() for _ in range(50)))) == {"at-2"}
    assert len(server.requests("POST", TOKEN_PATH)) == 2


async def test_refusal_by_the_token_endpoint_names_the_namespace(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """A wrong secret surfaces as TokenEndpointError for the namespace; a later call retries."""
    body = {"error": "invalid_client", "error_description": "Client authentication failed"}
    server.script("POST", TOKEN_PATH, Reply(401, json=body), grant("at-1"))
    cred = make()
    with pytest.raises(TokenEndpointError, match="Client authentication failed") as raised:
        await cred.token()
    assert raised.value.namespace == "team-a"
    assert await cred.token() == "at-1"


async def test_aclose_cancels_a_refresh_in_flight(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """Closing the credential stops its refresh; waiters see the cancellation."""
    server.script("POST", TOKEN_PATH, grant("at-1", delay=5))
    cred = make()
    waiter = asyncio.ensure_future(cred.token())
    await asyncio.sleep(0.05)
    await cred.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter


# --- secrets --------------------------------------------------------------------------------


async def test_secret_and_tokens_stay_out_of_repr_and_logs(
    make: Callable[..., OAuthM2MCredential], server: ScriptedServer
) -> None:
    """repr masks the client secret; refresh and invalidation logs carry no secret or token."""
    server.script("POST", TOKEN_PATH, Reply(503), grant("at-secret-1"), grant("at-secret-2"))
    cred = make()
    with capture_logs() as logs:
        await cred.token()
        cred.invalidate("at-secret-1")
        await cred.token()
    assert SECRET not in repr(cred)
    assert "sp-1" in repr(cred)
    events = [e["event"] for e in logs]
    assert {"token_endpoint_retrying", "token_refreshed", "token_invalidated"} <= set(events)
    assert not any(SECRET in str(v) or "at-secret" in str(v) for e in logs for v in e.values())


def test_oauth_without_a_secret_is_unavailable(session: aiohttp.ClientSession) -> None:
    """A missing client secret is refused when the credential is built."""
    with pytest.raises(CredentialUnavailable):
        OAuthM2MCredential(session, "https://h", "sp-1", "", namespace="team-a")


async def test_a_shared_cache_holds_the_token_under_the_namespace(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Given a shared cache, the token lives there under namespace and client id; aclose
    leaves that cache open."""
    server.script("POST", TOKEN_PATH, grant("at-1"))
    cache = TokenCache()
    cred = OAuthM2MCredential(
        session,
        server.url,
        "sp-1",
        SECRET,
        namespace="team-a",
        token_endpoint=server.url + TOKEN_PATH,
        cache=cache,
    )
    await cred.token()
    await cred.aclose()
    key = CacheKey("team-a", "oauth-m2m:client/sp-1", server.url)
    assert cache.invalidate(key, "at-1")
    await cache.aclose()
