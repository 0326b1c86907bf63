"""From a plan to a cached credential: its kind, its cache key, where its secret is read, and
how a built OAuth M2M credential caches, refreshes and drops its tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import aiohttp
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from gateway.databricks.auth import TokenProvider
from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable, IdentityForbidden, TokenEndpointError
from gateway.identity.builders import SHARED_NAMESPACE, Builder
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.identity.principal import client_subject
from gateway.identity.strategy import Plan, WorkspaceRef
from gateway.kube import KubeForbidden
from gateway.settings import IdentityOptions
from tests.databricks.scripted import Reply, ScriptedServer
from tests.identity.fakes import Clock, FakeKube, settle

PROD = "https://prod.cloud.databricks.com"
WS = WorkspaceRef("prod", PROD)
NS = "team-a"
PAT = "dapi-builder-0123456789abcdef"
ORIGIN = "tenant policy"
TOKEN_PATH = "/oidc/v1/token"
DISCOVERY = "/oidc/.well-known/oauth-authorization-server"
SECRET = "dose0123456789abcdef0123"


@pytest.fixture
def build(
    session: aiohttp.ClientSession, cache: TokenCache
) -> Callable[[FakeKube | None], Builder]:
    def make(kube: FakeKube | None) -> Builder:
        return Builder(session, cache, IdentityOptions(service_account_token_seconds=900), kube)

    return make


def nothing() -> None:
    """An on_invalidate hook that does nothing."""


PLANS = [
    (Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT)), "pat:inline"),
    (Plan("pat", WS, ORIGIN, secret_name="databricks-token"), "pat:secret/databricks-token"),
    (
        Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1", inline_secret=SecretStr("s")),
        f"oauth-m2m:{client_subject('sp-1')}",
    ),
    (
        Plan("oauth-m2m", WS, ORIGIN, secret_name="databricks-oauth"),
        "oauth-m2m:secret/databricks-oauth",
    ),
    (
        Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1", secret_name="sp"),
        f"oauth-m2m:secret/sp/{client_subject('sp-1')}",
    ),
    (
        Plan("service-account-federation", WS, ORIGIN, service_account="etl", audience="aud"),
        "service-account-federation:etl",
    ),
    (Plan("pod-token-federation", WS, ORIGIN, token_file="/t"), "pod-token-federation:/t"),
    (
        Plan(
            "azure-client-secret",
            WS,
            ORIGIN,
            tenant_id="t",
            client_id="c",
            inline_secret=SecretStr("s"),
        ),
        f"azure-client-secret:{client_subject('c')}",
    ),
    (
        Plan("azure-client-secret", WS, ORIGIN, tenant_id="t", client_id="c", secret_name="az"),
        f"azure-client-secret:secret/az/{client_subject('c')}",
    ),
    (
        Plan("azure-workload-identity", WS, ORIGIN, tenant_id="t", client_id="c", token_file="/f"),
        f"azure-workload-identity:{client_subject('c')}",
    ),
]
PLAN_IDS = [
    "pat-inline",
    "pat-secret",
    "oauth-inline",
    "oauth-secret",
    "oauth-client-id-and-secret",
    "service-account",
    "pod-token",
    "azure-inline",
    "azure-secret",
    "azure-workload",
]


@pytest.mark.parametrize(("plan", "identity"), PLANS, ids=PLAN_IDS)
def test_each_plan_kind_gives_a_credential_of_that_kind(
    build: Callable[[FakeKube | None], Builder], kube: FakeKube, plan: Plan, identity: str
) -> None:
    """The credential has the plan's kind and is cached by namespace, identity key and host."""
    credential = build(kube).credential(plan, NS, nothing)
    assert (credential.kind, credential.auth_type) == (plan.kind, plan.kind)
    assert credential.namespace == NS
    assert credential.key == CacheKey(NS, identity, PROD)
    assert kube.reads == []
    assert kube.mints == []


@pytest.mark.parametrize(("plan", "identity"), PLANS, ids=PLAN_IDS)
def test_building_needs_no_kubernetes(
    build: Callable[[FakeKube | None], Builder], plan: Plan, identity: str
) -> None:
    """Every kind is built without Kubernetes; only a fetch may need it."""
    assert build(None).credential(plan, NS, nothing).key.identity == identity


def test_a_shared_plan_is_cached_under_the_shared_namespace(
    build: Callable[[FakeKube | None], Builder],
) -> None:
    """A shared (default) plan's key names no namespace, but the credential knows its caller."""
    plan = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT), shared=True)
    credential = build(None).credential(plan, NS, nothing)
    assert credential.key == CacheKey(SHARED_NAMESPACE, "pat:inline", PROD)
    assert credential.namespace == NS


async def test_a_shared_plan_is_one_cache_entry_for_every_namespace(
    build: Callable[[FakeKube | None], Builder], cache: TokenCache
) -> None:
    """Two namespaces on the default identity share one cached token."""
    plan = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT), shared=True)
    builder = build(None)
    first = builder.credential(plan, "team-a", nothing)
    second = builder.credential(plan, "team-b", nothing)
    assert first.key == second.key
    assert [await first.token(), await second.token()] == [PAT, PAT]
    assert len(cache) == 1


async def test_an_unshared_plan_is_one_cache_entry_per_namespace(
    build: Callable[[FakeKube | None], Builder], cache: TokenCache
) -> None:
    """The same plan in two namespaces is two identities: tokens never cross namespaces."""
    plan = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT))
    builder = build(None)
    first = builder.credential(plan, "team-a", nothing)
    second = builder.credential(plan, "team-b", nothing)
    assert first.key != second.key
    await first.token()
    await second.token()
    assert len(cache) == 2


KUBE_PLANS = [
    Plan("pat", WS, ORIGIN, secret_name="databricks-token"),
    Plan("oauth-m2m", WS, ORIGIN, secret_name="databricks-oauth"),
    Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1", secret_name="sp"),
    Plan("azure-client-secret", WS, ORIGIN, tenant_id="t", client_id="c", secret_name="az"),
    Plan("service-account-federation", WS, ORIGIN, service_account="etl", audience="aud"),
]
KUBE_IDS = ["pat-secret", "oauth-secret", "oauth-client-id-secret", "azure-secret", "sa"]


@pytest.mark.parametrize("plan", KUBE_PLANS, ids=KUBE_IDS)
async def test_a_kubernetes_kind_without_kubernetes_fails_on_fetch(
    build: Callable[[FakeKube | None], Builder], plan: Plan
) -> None:
    """Without a kube client, a kind that reads a Secret or mints a token is unavailable."""
    credential = build(None).credential(plan, NS, nothing)
    with pytest.raises(CredentialUnavailable) as raised:
        await credential.token()
    assert "needs the Kubernetes API, which is off (set kubernetes.mode)" in raised.value.message
    assert raised.value.namespace == NS


@pytest.mark.parametrize(
    "plan",
    [
        Plan("pat", WS, ORIGIN),
        Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1"),
        Plan("azure-client-secret", WS, ORIGIN, tenant_id="t", client_id="c"),
    ],
    ids=["pat", "oauth-m2m", "azure-client-secret"],
)
def test_an_inline_kind_without_its_secret_is_refused_when_built(
    build: Callable[[FakeKube | None], Builder], plan: Plan
) -> None:
    """A plan with neither an inline secret nor a Secret is refused, naming its origin."""
    with pytest.raises(CredentialUnavailable, match=f"gives no secret for {plan.kind}") as raised:
        build(None).credential(plan, NS, nothing)
    assert (raised.value.namespace, raised.value.source) == (NS, ORIGIN)


async def test_an_inline_pat_is_served_as_given(
    build: Callable[[FakeKube | None], Builder],
) -> None:
    """An inline PAT is the bearer token, with no Kubernetes or network call."""
    credential = build(None).credential(
        Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT)), NS, nothing
    )
    assert await credential.token() == PAT


async def test_a_pat_secret_is_read_from_the_namespace_at_fetch(
    build: Callable[[FakeKube | None], Builder], kube: FakeKube
) -> None:
    """A PAT Secret is read from the requesting namespace at each use, not when built."""
    kube.put(NS, "databricks-token", token="dapi-from-secret\n")
    credential = build(kube).credential(
        Plan("pat", WS, ORIGIN, secret_name="databricks-token"), NS, nothing
    )
    assert kube.reads == []
    assert await credential.token() == "dapi-from-secret"
    assert await credential.token() == "dapi-from-secret"
    assert kube.reads == [(NS, "databricks-token")] * 2


async def test_an_oauth_secret_without_a_client_id_is_unavailable(
    build: Callable[[FakeKube | None], Builder], kube: FakeKube
) -> None:
    """An OAuth Secret lacking client_id fails on fetch naming the key, before any network."""
    kube.put(NS, "databricks-oauth", client_secret="dose")
    plan = Plan("oauth-m2m", WS, ORIGIN, secret_name="databricks-oauth")
    credential = build(kube).credential(plan, NS, nothing)
    with pytest.raises(CredentialUnavailable, match="has no key 'client_id'"):
        await credential.token()


async def test_a_service_account_token_is_minted_for_its_account_and_audience(
    build: Callable[[FakeKube | None], Builder], kube: FakeKube
) -> None:
    """Federation mints for the plan's account and audience, for the configured lifetime."""
    plan = Plan("service-account-federation", WS, ORIGIN, service_account="etl", audience="aud")
    credential = build(kube).credential(plan, NS, nothing)
    # The fake refuses TokenRequest (RBAC): a 403 refusal naming the account, not an outage.
    with pytest.raises(IdentityForbidden, match="ServiceAccount 'etl'") as caught:
        await credential.token()
    assert caught.value.status == 403
    assert isinstance(caught.value.__cause__, KubeForbidden)
    assert kube.mints == [(NS, "etl", ["aud"], 900)]


@pytest.mark.parametrize("kind", ["pod-token-federation", "azure-workload-identity"])
async def test_a_token_file_kind_reads_its_file_at_fetch(
    build: Callable[[FakeKube | None], Builder], kind: str, tmp_path: Path
) -> None:
    """A token-file kind reads its file when fetching; a missing one is unavailable."""
    missing = str(tmp_path / "token")
    plan = Plan(kind, WS, ORIGIN, client_id="c", tenant_id="t", token_file=missing)
    credential = build(None).credential(plan, NS, nothing)
    with pytest.raises(CredentialUnavailable, match="does not exist"):
        await credential.token()


async def test_the_invalidate_hook_fires_only_for_the_current_token(
    build: Callable[[FakeKube | None], Builder],
) -> None:
    """Refusing the cached token calls on_invalidate once; a stale token's refusal does not."""
    calls: list[str] = []
    plan = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT))
    credential = build(None).credential(plan, NS, lambda: calls.append("forget"))
    token = await credential.token()
    credential.invalidate("dapi-some-older-token")
    assert calls == []
    credential.invalidate(token)
    credential.invalidate(token)
    assert calls == ["forget"]


# --- a PAT credential -----------------------------------------------------------------------


async def test_a_refused_pat_is_still_served_and_the_refusal_logged(
    build: Callable[[FakeKube | None], Builder],
) -> None:
    """A refused PAT cannot be refreshed: it is served again, the drop logged without it."""
    credential = build(None).credential(
        Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT)), NS, nothing
    )
    await credential.token()
    with capture_logs() as logs:
        credential.invalidate(PAT)
    assert await credential.token() == PAT
    assert [(e["event"], e["namespace"]) for e in logs] == [("token_invalidated", NS)]
    assert PAT not in str(logs)
    assert PAT not in repr(credential)


def test_built_credentials_are_token_providers(
    build: Callable[[FakeKube | None], Builder],
) -> None:
    """A PAT and an OAuth M2M credential both satisfy the Jobs client's TokenProvider."""
    pat = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT))
    oauth = Plan("oauth-m2m", WS, ORIGIN, client_id="id", inline_secret=SecretStr(SECRET))
    for plan in (pat, oauth):
        assert isinstance(build(None).credential(plan, NS, nothing), TokenProvider)


# --- an OAuth M2M credential ----------------------------------------------------------------


def sp_1(server: ScriptedServer) -> Plan:
    """OAuth M2M as service principal sp-1 at the scripted server."""
    workspace = WorkspaceRef("scripted", server.url)
    return Plan("oauth-m2m", workspace, ORIGIN, client_id="sp-1", inline_secret=SecretStr(SECRET))


def grant(value: str, expires_in: int = 3600, delay: float = 0.0) -> Reply:
    body = {"access_token": value, "token_type": "Bearer", "expires_in": expires_in}
    return Reply(json=body, delay=delay)


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Make(Protocol):
    def __call__(self, *, discover: bool = ...) -> CachedCredential: ...


@pytest.fixture
async def make(
    session: aiohttp.ClientSession, server: ScriptedServer, clock: Clock
) -> AsyncIterator[Make]:
    """OAuth M2M credentials for sp-1 at the scripted server, each in a cache of its own."""
    made: list[Builder] = []

    def build(*, discover: bool = False) -> CachedCredential:
        tokens = TokenClient(
            session,
            retry=RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02),
            clock=clock,
            endpoints=None if discover else {server.url: server.url + TOKEN_PATH},
        )
        builder = Builder(session, TokenCache(clock=clock), IdentityOptions(), None, tokens=tokens)
        made.append(builder)
        return builder.credential(sp_1(server), "team-a", nothing)

    yield build
    for builder in made:
        await builder.aclose()
        await builder.cache.aclose()


# --- OAuth M2M: fetching and caching --------------------------------------------------------


async def test_first_token_is_fetched_then_cached(make: Make, server: ScriptedServer) -> None:
    """One token request serves every call while the token is fresh."""
    server.script("POST", TOKEN_PATH, grant("at-1"))
    cred = make()
    assert [await cred.token() for _ in range(3)] == ["at-1"] * 3
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_token_endpoint_is_discovered_once(make: Make, server: ScriptedServer) -> None:
    """Without a configured endpoint the credential asks OIDC discovery, once."""
    endpoint = f"{server.url}/oidc/v1/token"
    server.always("GET", DISCOVERY, Reply(json={"token_endpoint": endpoint}))
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=60), grant("at-2"))
    cred = make(discover=True)
    await cred.token()
    cred.invalidate("at-1")
    assert await cred.token() == "at-2"
    assert len(server.requests("GET", DISCOVERY)) == 1


async def test_concurrent_callers_share_one_refresh(make: Make, server: ScriptedServer) -> None:
    """However many callers wait, one token request is in flight (single-flight)."""
    server.script("POST", TOKEN_PATH, grant("at-1", delay=0.05))
    cred = make()
    tokens = await asyncio.gather(*(cred.token() for _ in range(50)))
    assert set(tokens) == {"at-1"}
    assert len(server.requests("POST", TOKEN_PATH)) == 1


async def test_a_caller_giving_up_does_not_cancel_the_refresh(
    make: Make, server: ScriptedServer
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
    make: Make, server: ScriptedServer, clock: Clock
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
    make: Make, server: ScriptedServer, clock: Clock
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
    make: Make, server: ScriptedServer, clock: Clock
) -> None:
    """With under 40 s left the caller waits for a new token rather than use the old one."""
    server.script("POST", TOKEN_PATH, grant("at-1", expires_in=3600), grant("at-2"))
    cred = make()
    await cred.token()
    clock.now += 3600 - 39
    assert await cred.token() == "at-2"


async def test_failed_background_refresh_keeps_the_token_and_backs_off(
    make: Make, server: ScriptedServer, clock: Clock
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
    make: Make, server: ScriptedServer
) -> None:
    """After Databricks refuses a token, the next call gets a fresh one."""
    server.script("POST", TOKEN_PATH, grant("at-1"), grant("at-2"))
    cred = make()
    await cred.token()
    cred.invalidate("at-1")
    assert await cred.token() == "at-2"


async def test_invalidating_an_old_token_keeps_the_new_one(
    make: Make, server: ScriptedServer
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


async def test_a_storm_of_refusals_costs_one_refresh(make: Make, server: ScriptedServer) -> None:
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
    make: Make, server: ScriptedServer
) -> None:
    """A wrong secret surfaces as TokenEndpointError for the namespace; a later call retries."""
    body = {"error": "invalid_client", "error_description": "Client authentication failed"}
    server.script("POST", TOKEN_PATH, Reply(401, json=body), grant("at-1"))
    cred = make()
    with pytest.raises(TokenEndpointError, match="Client authentication failed") as raised:
        await cred.token()
    assert raised.value.namespace == "team-a"
    assert await cred.token() == "at-1"


async def test_closing_the_cache_cancels_a_refresh_in_flight(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> None:
    """Closing the credential's token cache stops its refresh; waiters see the cancellation."""
    server.script("POST", TOKEN_PATH, grant("at-1", delay=5))
    cache = TokenCache()
    tokens = TokenClient(session, endpoints={server.url: server.url + TOKEN_PATH})
    builder = Builder(session, cache, IdentityOptions(), None, tokens=tokens)
    plan = sp_1(server)
    waiter = asyncio.ensure_future(builder.credential(plan, "team-a", nothing).token())
    await asyncio.sleep(0.05)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_secret_and_tokens_stay_out_of_repr_and_logs(
    make: Make, server: ScriptedServer
) -> None:
    """repr masks the client secret and the client id; refresh and invalidation logs carry no
    secret, no token and no whole client id."""
    server.script("POST", TOKEN_PATH, Reply(503), grant("at-secret-1"), grant("at-secret-2"))
    cred = make()
    with capture_logs() as logs:
        await cred.token()
        cred.invalidate("at-secret-1")
        await cred.token()
    assert SECRET not in repr(cred)
    assert "sp-1" not in repr(cred)
    assert client_subject("sp-1") in repr(cred)
    events = [e["event"] for e in logs]
    assert {"token_endpoint_retrying", "token_refreshed", "token_invalidated"} <= set(events)
    assert not any(SECRET in str(v) or "at-secret" in str(v) for e in logs for v in e.values())
    assert not any("sp-1" in str(v) for e in logs for v in e.values())


async def test_a_shared_cache_holds_the_token_under_the_namespace(
    session: aiohttp.ClientSession, server: ScriptedServer, cache: TokenCache
) -> None:
    """The token lives in the builder's cache under the namespace, the client id and the host."""
    server.script("POST", TOKEN_PATH, grant("at-1"))
    tokens = TokenClient(session, endpoints={server.url: server.url + TOKEN_PATH})
    builder = Builder(session, cache, IdentityOptions(), None, tokens=tokens)
    plan = sp_1(server)
    await builder.credential(plan, "team-a", nothing).token()
    assert cache.invalidate(
        CacheKey("team-a", f"oauth-m2m:{client_subject('sp-1')}", server.url), "at-1"
    )
