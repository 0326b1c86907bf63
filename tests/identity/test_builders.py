"""From a plan to a cached credential: its kind, its cache key, and where its secret is read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from gateway.errors import CredentialUnavailable
from gateway.identity.builders import SHARED_NAMESPACE, Builder
from gateway.identity.cache import CacheKey, TokenCache
from gateway.identity.plans import Kind, Plan, Workspace
from gateway.kube import KubeForbidden
from gateway.settings import IdentityOptions
from tests.support.kube import FakeKube

PROD = "https://prod.cloud.databricks.com"
WS = Workspace("prod", PROD)
NS = "team-a"
PAT = "dapi-builder-0123456789abcdef"
ORIGIN = "tenant policy"


@pytest.fixture
async def cache() -> AsyncIterator[TokenCache]:
    made = TokenCache()
    yield made
    await made.aclose()


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


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
        "oauth-m2m:sp-1",
    ),
    (
        Plan("oauth-m2m", WS, ORIGIN, secret_name="databricks-oauth"),
        "oauth-m2m:secret/databricks-oauth",
    ),
    (Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1", secret_name="sp"), "oauth-m2m:secret/sp"),
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
        "azure-client-secret:c",
    ),
    (
        Plan("azure-client-secret", WS, ORIGIN, tenant_id="t", client_id="c", secret_name="az"),
        "azure-client-secret:secret/az",
    ),
    (
        Plan("azure-workload-identity", WS, ORIGIN, tenant_id="t", client_id="c", token_file="/f"),
        "azure-workload-identity:c",
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
    """A PAT Secret is read from the requesting namespace when the token is first needed."""
    kube.secrets[(NS, "databricks-token")] = {"token": b"dapi-from-secret\n"}
    credential = build(kube).credential(
        Plan("pat", WS, ORIGIN, secret_name="databricks-token"), NS, nothing
    )
    assert kube.reads == []
    assert await credential.token() == "dapi-from-secret"
    assert await credential.token() == "dapi-from-secret"
    assert kube.reads == [(NS, "databricks-token")]


async def test_an_oauth_secret_without_a_client_id_is_unavailable(
    build: Callable[[FakeKube | None], Builder], kube: FakeKube
) -> None:
    """An OAuth Secret lacking client_id fails on fetch naming the key, before any network."""
    kube.secrets[(NS, "databricks-oauth")] = {"client_secret": b"dose"}
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
    with pytest.raises(KubeForbidden):
        await credential.token()
    assert kube.mints == [(NS, "etl", ["aud"], 900)]


@pytest.mark.parametrize("kind", ["pod-token-federation", "azure-workload-identity"])
async def test_a_token_file_kind_reads_its_file_at_fetch(
    build: Callable[[FakeKube | None], Builder], kind: Kind, tmp_path: Path
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
