"""NamespaceResolver: precedence with I/O, failing closed, overrides, caching, single flight.

Kubernetes and the ServiceAccount index are small in-memory fakes that fail as the real edge
does (``KubeNotFound``, ``KubeForbidden`` built by ``gateway.kube.status``); the builder is
the real one, over a real ``ClientSession`` and ``TokenCache``. No test fetches a Databricks
token, so none needs the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.errors import (
    ConfigError,
    CredentialUnavailable,
    HostNotAllowed,
    IdentityForbidden,
    IdentityMisconfigured,
    IdentityNotConfigured,
    InvalidRequest,
    KubernetesError,
)
from gateway.identity.builders import SHARED_NAMESPACE, Builder, SecretHeldToken
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.identity.default import ORIGIN as DEFAULT_ORIGIN
from gateway.identity.plans import ENABLED_SELECTORS
from gateway.identity.principal import client_subject
from gateway.identity.resolver import IdentityOverride, NamespaceResolver, ResolvedIdentity
from gateway.kube import AccountChange, KubeForbidden, ServiceAccountRef
from gateway.settings import Settings
from tests.identity.fakes import Clock, FakeKube

PROD = "https://prod.cloud.databricks.com"
DEV = "https://dev.cloud.databricks.com"
NS = "team-a"
OTHER = "team-b"
GATEWAY_PAT = "dapi-gateway-0123456789abcdef"
TENANT_PAT = "dapi-tenant-0123456789abcdef"
DEFAULT_ENV = {"DATABRICKS_HOST": PROD, "DATABRICKS_TOKEN": GATEWAY_PAT}
LAKEGATE_ON = {"lakegate.io/databricks-enabled": "true"}
CLIENT_ID = "lakegate.io/databricks-client-id"
OAUTH_KEYS = {"client_id": "sp-tenant", "client_secret": "dose-tenant-0123456789"}


# --- fakes ----------------------------------------------------------------------------------


class FakeAccounts:
    """ServiceAccounts by (namespace, name), as the informer's index holds them."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], ServiceAccountRef] = {}
        self.lists = 0
        self.gets = 0
        self.error: KubernetesError | None = None

    def add(
        self,
        name: str,
        namespace: str = NS,
        *,
        labels: Mapping[str, str] = LAKEGATE_ON,
        annotations: Mapping[str, str] | None = None,
    ) -> ServiceAccountRef:
        ref = ServiceAccountRef(
            namespace=namespace,
            name=name,
            uid=f"uid-{name}",
            resource_version=str(len(self.accounts) + 1),
            labels=dict(labels),
            # A labelled account names its service principal unless a test says otherwise.
            annotations={CLIENT_ID: f"sp-{name}", **(annotations or {})},
        )
        self.accounts[(namespace, name)] = ref
        return ref

    async def get(self, namespace: str, name: str) -> ServiceAccountRef | None:
        self.gets += 1
        return self.accounts.get((namespace, name))

    async def in_namespace(self, namespace: str) -> Sequence[ServiceAccountRef]:
        self.lists += 1
        if self.error is not None:
            raise self.error
        return [a for (ns, _), a in self.accounts.items() if ns == namespace]


def make_settings(*, namespaces: Mapping[str, Any] | None = None, **identity: Any) -> Settings:
    return Settings.model_validate(
        {
            "workspaces": {
                "prod": {"host": PROD, "api_version": "2.1", "max_concurrent_requests": 7},
                "dev": {"host": DEV},
            },
            "identity": identity,
            "tenants": {"defaults": {"workspace": "prod"}, "namespaces": dict(namespaces or {})},
        }
    )


OPT_IN = make_settings(default_for_unconfigured=True)
PINNED = make_settings(namespaces={NS: {"identity": {"type": "pat", "token": TENANT_PAT}}})


class Make(Protocol):
    def __call__(
        self,
        settings: Settings = ...,
        *,
        environ: Mapping[str, str] = ...,
        with_kube: bool = ...,
    ) -> NamespaceResolver: ...


@pytest.fixture
def accounts() -> FakeAccounts:
    return FakeAccounts()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(
    session: aiohttp.ClientSession,
    cache: TokenCache,
    kube: FakeKube,
    accounts: FakeAccounts,
    clock: Clock,
) -> AsyncIterator[Make]:
    made: list[NamespaceResolver] = []

    def build(
        settings: Settings = OPT_IN,
        *,
        environ: Mapping[str, str] = DEFAULT_ENV,
        with_kube: bool = True,
    ) -> NamespaceResolver:
        edge = kube if with_kube else None
        resolver = NamespaceResolver(
            settings,
            builder=Builder(session, cache, settings.identity, edge),
            environ=environ,
            accounts=accounts if with_kube else None,
            kube=edge,
            clock=clock,
        )
        made.append(resolver)
        return resolver

    yield build
    for resolver in made:
        await resolver.aclose()
    assert kube.mints == [], "resolving an identity never mints a token"


def put_pat_secret(kube: FakeKube, namespace: str = NS) -> None:
    kube.put(namespace, "databricks-token", token=TENANT_PAT)


def put_oauth_secret(kube: FakeKube, namespace: str = NS) -> None:
    kube.put(namespace, "databricks-oauth", **OAUTH_KEYS)


def labelled_change(accounts: FakeAccounts, name: str, namespace: str = NS) -> AccountChange:
    return AccountChange("added", None, accounts.add(name, namespace))


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


# --- precedence -----------------------------------------------------------------------------


async def test_policy_beats_service_account_secret_and_default(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A policy identity wins, and Kubernetes is not even asked."""
    accounts.add("etl")
    put_oauth_secret(kube)
    put_pat_secret(kube)
    settings = make_settings(
        default_for_unconfigured=True,
        namespaces={
            NS: {"identity": {"type": "oauth-m2m", "client_id": "sp-1", "client_secret": "x"}}
        },
    )
    resolved = await make(settings).resolve(NS)
    assert (resolved.kind, resolved.origin) == ("oauth-m2m", "tenant policy")
    assert (kube.reads, accounts.lists) == ([], 0)


async def test_labelled_service_account_beats_secrets(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A labelled ServiceAccount wins over the well-known Secrets, which are not read."""
    accounts.add("etl")
    put_oauth_secret(kube)
    put_pat_secret(kube)
    resolved = await make().resolve(NS)
    assert (resolved.kind, resolved.origin) == (
        "service-account-federation",
        "ServiceAccount 'etl'",
    )
    assert kube.reads == []


async def test_an_unlabelled_service_account_is_passed_over(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """An account without the label (or labelled 'false') does not count."""
    accounts.add("plain", labels={})
    accounts.add("off", labels={"lakegate.io/databricks-enabled": "false"})
    put_pat_secret(kube)
    assert (await make().resolve(NS)).origin == "Secret 'databricks-token'"


async def test_a_labelled_account_without_a_client_id_gives_way_to_the_secrets(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """As in Flyte, a labelled ServiceAccount whose client-id annotation is missing or blank
    is no identity: the namespace's Secret is used, even with the default identity lent."""
    accounts.add("etl", annotations={CLIENT_ID: "  "})
    put_pat_secret(kube)
    assert (await make().resolve(NS)).origin == "Secret 'databricks-token'"


async def test_the_one_labelled_account_with_a_client_id_is_chosen(
    make: Make, accounts: FakeAccounts
) -> None:
    """Beside an annotated labelled account, one without a client id is no second candidate."""
    accounts.add("bare", annotations={CLIENT_ID: ""})
    accounts.add("etl")
    assert (await make().resolve(NS)).origin == "ServiceAccount 'etl'"


async def test_a_labelled_account_without_a_client_id_and_no_secret_is_refused(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """With nothing else in the namespace the refusal (422) names the account and the missing
    annotation; the gateway's default identity is not lent instead."""
    accounts.add("etl", annotations={CLIENT_ID: ""})
    with pytest.raises(IdentityMisconfigured) as caught:
        await make().resolve(NS)
    assert "ServiceAccount 'etl'" in caught.value.message
    assert CLIENT_ID in caught.value.message
    assert caught.value.status == 422


async def test_resolutions_name_their_principal_without_a_secret(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A discovered account resolves to its client id at its workspace; a Secret-held
    identity to its Secret; the default to its own source; none holds a secret."""
    accounts.add("etl", annotations={CLIENT_ID: "0c2f6a7e-0000-4000-8000-00000000e7a1"})
    account = await make().resolve(NS)
    assert account.principal is not None
    assert account.principal.record() == {
        "kind": "service-account-federation",
        "host": PROD,
        "client_id": "0c2f...e7a1",
        "service_account": "etl",
        "fingerprint": account.principal.fingerprint,
    }
    put_oauth_secret(kube, namespace=OTHER)
    held = await make().resolve(OTHER)
    assert held.principal is not None
    assert held.principal.record()["secret"] == "databricks-oauth"
    default = await make().resolve("team-unconfigured")
    assert default.principal is not None
    assert GATEWAY_PAT not in repr(default.principal.record())
    assert default.principal.fingerprint != held.principal.fingerprint


async def test_oauth_secret_beats_token_secret(make: Make, kube: FakeKube) -> None:
    """With both well-known Secrets, databricks-oauth wins and databricks-token is not read."""
    put_oauth_secret(kube)
    put_pat_secret(kube)
    resolved = await make().resolve(NS)
    assert (resolved.kind, resolved.origin) == ("oauth-m2m", "Secret 'databricks-oauth'")
    assert kube.reads == [(NS, "databricks-oauth")]


async def test_secret_beats_default(make: Make, kube: FakeKube) -> None:
    """A namespace's own Secret wins over the opted-in default identity."""
    put_pat_secret(kube)
    resolved = await make().resolve(NS)
    assert (resolved.kind, resolved.origin) == ("pat", "Secret 'databricks-token'")
    assert kube.reads == [(NS, "databricks-oauth"), (NS, "databricks-token")]


async def test_default_serves_an_unconfigured_namespace_with_opt_in(make: Make) -> None:
    """With nothing else and the opt-in, the gateway's identity is used."""
    resolved = await make().resolve(NS)
    assert (resolved.kind, resolved.origin) == ("pat", DEFAULT_ORIGIN)
    assert await resolved.credential.token() == GATEWAY_PAT


async def test_unconfigured_without_opt_in_is_refused(make: Make, kube: FakeKube) -> None:
    """Without the opt-in an unconfigured namespace is refused, not run as the gateway."""
    with pytest.raises(IdentityNotConfigured) as raised:
        await make(make_settings()).resolve(NS)
    assert raised.value.namespace == NS
    assert raised.value.status == 403
    assert ENABLED_SELECTORS[0] in raised.value.message
    assert kube.reads == [(NS, "databricks-oauth"), (NS, "databricks-token")]


async def test_unconfigured_without_kubernetes_offers_only_the_tenants_file(make: Make) -> None:
    """Without Kubernetes the refusal does not suggest labels or Secrets."""
    with pytest.raises(IdentityNotConfigured) as raised:
        await make(make_settings(), with_kube=False).resolve(NS)
    assert ENABLED_SELECTORS[0] not in raised.value.message


async def test_default_policy_gets_the_default_without_opt_in(make: Make) -> None:
    """``type: default`` in a policy is the operator's choice; no opt-in is needed."""
    settings = make_settings(namespaces={NS: {"identity": {"type": "default"}}})
    resolved = await make(settings).resolve(NS)
    assert resolved.origin == DEFAULT_ORIGIN


async def test_a_policy_without_identity_still_discovers(make: Make, kube: FakeKube) -> None:
    """A policy that sets only a workspace leaves the identity to discovery, in that workspace."""
    kube.put(NS, "databricks-token", token=TENANT_PAT)
    settings = make_settings(namespaces={NS: {"workspace": "dev"}})
    resolved = await make(settings).resolve(NS)
    assert (resolved.origin, resolved.workspace_name) == ("Secret 'databricks-token'", "dev")


async def test_discovery_off_asks_kubernetes_nothing(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """With discovery off, neither accounts nor Secrets are looked at."""
    accounts.add("etl")
    put_pat_secret(kube)
    settings = make_settings(default_for_unconfigured=True, discover_from_kubernetes=False)
    assert (await make(settings).resolve(NS)).origin == DEFAULT_ORIGIN
    assert (kube.reads, accounts.lists) == ([], 0)


# --- failing closed -------------------------------------------------------------------------


@pytest.mark.parametrize("forbidden", ["databricks-oauth", "databricks-token"])
async def test_a_forbidden_secret_read_refuses_the_namespace(
    make: Make, kube: FakeKube, forbidden: str
) -> None:
    """RBAC refusing a Secret read is CredentialUnavailable, never the opted-in default."""
    kube.forbid(NS, forbidden)
    with pytest.raises(CredentialUnavailable) as raised:
        await make().resolve(NS)
    assert raised.value.source == f"Secret '{forbidden}'"
    assert raised.value.namespace == NS
    assert isinstance(raised.value.__cause__, KubeForbidden)
    assert "cannot get resource" in raised.value.message


async def test_a_forbidden_oauth_secret_is_not_skipped_for_the_token_secret(
    make: Make, kube: FakeKube
) -> None:
    """A refused databricks-oauth read stops there; databricks-token is never tried."""
    kube.forbid(NS, "databricks-oauth")
    put_pat_secret(kube)
    with pytest.raises(CredentialUnavailable):
        await make().resolve(NS)
    assert kube.reads == [(NS, "databricks-oauth")]


async def test_an_unreachable_api_refuses_the_namespace(make: Make, kube: FakeKube) -> None:
    """A Secret read that fails in transport is CredentialUnavailable, not a fallback."""
    kube.refusals[(NS, "databricks-oauth")] = KubernetesError("Kubernetes API unreachable")
    with pytest.raises(CredentialUnavailable, match="unreachable"):
        await make().resolve(NS)


async def test_a_failed_account_list_refuses_the_namespace(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A ServiceAccount list that fails refuses; Secrets are not read instead."""
    accounts.error = KubernetesError("Kubernetes API timed out")
    put_pat_secret(kube)
    with pytest.raises(CredentialUnavailable) as raised:
        await make().resolve(NS)
    assert raised.value.source == "ServiceAccounts"
    assert kube.reads == []


async def test_two_labelled_accounts_refuse_rather_than_fall_through(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """Two labelled accounts are the operator's error; the Secret is not used instead."""
    accounts.add("etl")
    accounts.add("ml")
    put_pat_secret(kube)
    with pytest.raises(CredentialUnavailable, match="etl, ml"):
        await make().resolve(NS)
    assert kube.reads == []


async def test_an_account_pointing_off_the_allow_list_refuses(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """An account annotated with an unlisted workspace refuses; nothing falls through."""
    accounts.add("etl", annotations={"lakegate.io/databricks-workspace": "https://harvest.example"})
    put_pat_secret(kube)
    with pytest.raises(HostNotAllowed):
        await make().resolve(NS)
    assert kube.reads == []


async def test_a_secret_with_unusable_keys_refuses(make: Make, kube: FakeKube) -> None:
    """A databricks-oauth Secret with unusable keys refuses; databricks-token is not tried."""
    kube.put(NS, "databricks-oauth", password="hunter2")
    put_pat_secret(kube)
    with pytest.raises(CredentialUnavailable, match="holds neither"):
        await make().resolve(NS)
    assert kube.reads == [(NS, "databricks-oauth")]


async def test_a_refusal_is_not_cached(make: Make, kube: FakeKube) -> None:
    """Once RBAC is fixed the next resolve succeeds, without waiting for a TTL."""
    resolver = make()
    kube.forbid(NS, "databricks-oauth")
    with pytest.raises(CredentialUnavailable):
        await resolver.resolve(NS)
    del kube.refusals[(NS, "databricks-oauth")]
    put_oauth_secret(kube)
    assert (await resolver.resolve(NS)).origin == "Secret 'databricks-oauth'"


# --- overrides ------------------------------------------------------------------------------


async def test_a_service_account_override_picks_that_labelled_account(
    make: Make, accounts: FakeAccounts
) -> None:
    """A request may name one of several labelled accounts; that one is used."""
    accounts.add("etl")
    accounts.add("ml")
    resolved = await make().resolve(NS, IdentityOverride(service_account="ml"))
    assert resolved.origin == "ServiceAccount 'ml'"
    assert resolved.key == f"service-account-federation:ml@{PROD}"


@pytest.mark.parametrize("labelled", [False, True], ids=["unlabelled", "absent"])
async def test_a_service_account_override_must_exist_and_be_labelled(
    make: Make, accounts: FakeAccounts, labelled: bool
) -> None:
    """An override naming an unlabelled or missing account is refused, naming the label."""
    if not labelled:
        accounts.add("plain", labels={})
    with pytest.raises(CredentialUnavailable) as raised:
        await make().resolve(NS, IdentityOverride(service_account="plain"))
    assert ENABLED_SELECTORS[0] in raised.value.message
    assert raised.value.source == "request"


async def test_a_service_account_override_is_looked_up_in_its_own_namespace(
    make: Make, accounts: FakeAccounts
) -> None:
    """A labelled account of another namespace cannot be named."""
    accounts.add("etl", OTHER)
    with pytest.raises(CredentialUnavailable):
        await make().resolve(NS, IdentityOverride(service_account="etl"))


async def test_a_secret_override_uses_that_secret(make: Make, kube: FakeKube) -> None:
    """A request may name another Secret of its namespace; only that Secret is read."""
    kube.offer(NS, "nightly", token=TENANT_PAT)
    put_oauth_secret(kube)
    resolved = await make().resolve(NS, IdentityOverride(secret="nightly"))
    assert (resolved.kind, resolved.origin) == ("pat", "Secret 'nightly'")
    assert kube.reads == [(NS, "nightly")]


async def test_a_secret_override_must_exist(make: Make, kube: FakeKube) -> None:
    """An override naming a missing Secret is refused, never the namespace's default."""
    put_pat_secret(kube)
    with pytest.raises(CredentialUnavailable, match="'nightly' does not exist") as raised:
        await make().resolve(NS, IdentityOverride(secret="nightly"))
    assert raised.value.source == "request"


async def test_a_forbidden_secret_override_refuses(make: Make, kube: FakeKube) -> None:
    """An override whose Secret RBAC hides is CredentialUnavailable, not 'does not exist'."""
    kube.forbid(NS, "nightly")
    with pytest.raises(CredentialUnavailable) as raised:
        await make().resolve(NS, IdentityOverride(secret="nightly"))
    assert isinstance(raised.value.__cause__, KubeForbidden)


@pytest.mark.parametrize(
    "override",
    [IdentityOverride(service_account="etl"), IdentityOverride(secret="nightly")],
    ids=["service-account", "secret"],
)
async def test_a_pinned_policy_refuses_overrides(
    make: Make, kube: FakeKube, accounts: FakeAccounts, override: IdentityOverride
) -> None:
    """A namespace whose identity the operator set cannot choose another per request."""
    accounts.add("etl")
    with pytest.raises(InvalidRequest) as raised:
        await make(PINNED).resolve(NS, override)
    assert raised.value.field == "identity"
    assert (kube.reads, accounts.gets) == ([], 0)


@pytest.mark.parametrize("with_kube", [False, True], ids=["no-kube", "discovery-off"])
async def test_overrides_need_discovery(make: Make, with_kube: bool) -> None:
    """Without Kubernetes discovery, a request cannot name an account or Secret."""
    settings = make_settings(discover_from_kubernetes=False)
    with pytest.raises(InvalidRequest, match="discovery") as raised:
        await make(settings, with_kube=with_kube).resolve(NS, IdentityOverride(secret="x"))
    assert raised.value.field == "identity"


@pytest.mark.parametrize(
    "fields",
    [{}, {"service_account": "etl", "secret": "x"}, {"secret": "Not_A_Name"}, {"secret": ""}],
    ids=["neither", "both", "bad-name", "empty"],
)
def test_an_override_names_exactly_one_valid_object(fields: dict[str, str]) -> None:
    """An override is one Kubernetes object name, either an account or a Secret."""
    with pytest.raises(InvalidRequest):
        IdentityOverride(**fields)


async def test_an_override_is_resolved_apart_from_the_namespace(make: Make, kube: FakeKube) -> None:
    """The namespace's own resolution and an override's are cached separately."""
    put_pat_secret(kube)
    kube.offer(NS, "nightly", token=TENANT_PAT)
    resolver = make()
    own = await resolver.resolve(NS)
    chosen = await resolver.resolve(NS, IdentityOverride(secret="nightly"))
    assert (own.origin, chosen.origin) == ("Secret 'databricks-token'", "Secret 'nightly'")
    assert await resolver.resolve(NS) is own


# --- the resolution cache -------------------------------------------------------------------


async def test_a_second_resolve_within_the_ttl_asks_kubernetes_nothing(
    make: Make, kube: FakeKube, accounts: FakeAccounts, clock: Clock
) -> None:
    """Within resolution_ttl_seconds the held resolution is returned as is."""
    put_pat_secret(kube)
    resolver = make(make_settings(resolution_ttl_seconds=5))
    first = await resolver.resolve(NS)
    clock.now += 4.9
    assert await resolver.resolve(NS) is first
    assert (len(kube.reads), accounts.lists) == (2, 1)


async def test_a_resolve_after_the_ttl_reads_kubernetes_again(
    make: Make, kube: FakeKube, accounts: FakeAccounts, clock: Clock
) -> None:
    """Once the TTL has passed, the namespace is resolved afresh."""
    put_pat_secret(kube)
    resolver = make(make_settings(resolution_ttl_seconds=5))
    first = await resolver.resolve(NS)
    clock.now += 5
    assert await resolver.resolve(NS) is not first
    assert (len(kube.reads), accounts.lists) == (4, 2)


async def test_each_namespace_is_resolved_on_its_own(make: Make, kube: FakeKube) -> None:
    """A held resolution of one namespace is never handed to another."""
    put_pat_secret(kube, NS)
    put_oauth_secret(kube, OTHER)
    resolver = make()
    mine, theirs = await resolver.resolve(NS), await resolver.resolve(OTHER)
    assert (mine.namespace, mine.kind) == (NS, "pat")
    assert (theirs.namespace, theirs.kind) == (OTHER, "oauth-m2m")


async def test_a_thousand_cold_resolves_read_kubernetes_once(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """Concurrent resolves of a cold namespace share one resolution and one set of reads."""
    put_pat_secret(kube)
    gate = kube.hold()
    resolver = make()
    waiting = [asyncio.ensure_future(resolver.resolve(NS)) for _ in range(1000)]
    await until(lambda: len(kube.reads) == 1)
    gate.set()
    results = await asyncio.gather(*waiting)
    assert all(r is results[0] for r in results)
    assert accounts.lists == 1
    assert kube.reads == [(NS, "databricks-oauth"), (NS, "databricks-token")]


async def test_a_thousand_cold_resolves_share_one_refusal(make: Make, kube: FakeKube) -> None:
    """A failing resolution fails every waiter with the same error, after one read."""
    kube.forbid(NS, "databricks-oauth")
    gate = kube.hold()
    resolver = make()
    waiting = [asyncio.ensure_future(resolver.resolve(NS)) for _ in range(1000)]
    await until(lambda: len(kube.reads) == 1)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert {type(r) for r in results} == {IdentityForbidden}
    assert len({id(r) for r in results}) == 1
    assert kube.reads == [(NS, "databricks-oauth")]


# --- forgetting -----------------------------------------------------------------------------


async def test_an_account_change_makes_the_next_resolve_read_again(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A newly labelled account takes effect on the next resolve, within the TTL."""
    put_pat_secret(kube)
    resolver = make()
    assert (await resolver.resolve(NS)).origin == "Secret 'databricks-token'"
    resolver.on_account_change(labelled_change(accounts, "etl"))
    assert (await resolver.resolve(NS)).origin == "ServiceAccount 'etl'"
    assert accounts.lists == 2


async def test_an_account_change_elsewhere_keeps_the_resolution(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A change in another namespace does not make this one read again."""
    put_pat_secret(kube)
    resolver = make()
    first = await resolver.resolve(NS)
    resolver.on_account_change(labelled_change(accounts, "etl", OTHER))
    assert await resolver.resolve(NS) is first


async def test_an_account_change_forgets_overrides_too(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """Every held resolution of the namespace is dropped, with or without an override."""
    kube.offer(NS, "nightly", token=TENANT_PAT)
    resolver = make()
    first = await resolver.resolve(NS, IdentityOverride(secret="nightly"))
    resolver.on_account_change(labelled_change(accounts, "etl"))
    assert await resolver.resolve(NS, IdentityOverride(secret="nightly")) is not first


def test_a_change_without_an_account_is_ignored(make: Make) -> None:
    """The listener tolerates an event it cannot read."""
    make().on_account_change(object())


async def test_a_refused_token_makes_the_next_resolve_read_again(
    make: Make, kube: FakeKube
) -> None:
    """credential.invalidate of the current token forgets the namespace's resolution."""
    put_pat_secret(kube)
    resolver = make()
    first = await resolver.resolve(NS)
    token = await first.credential.token()
    reads = len(kube.reads)
    first.credential.invalidate(token)
    second = await resolver.resolve(NS)
    assert second is not first
    assert len(kube.reads) == reads + 2


async def test_a_stale_token_refusal_keeps_the_resolution(make: Make, kube: FakeKube) -> None:
    """Refusing a token that is no longer cached does not forget the namespace."""
    put_pat_secret(kube)
    resolver = make()
    first = await resolver.resolve(NS)
    await first.credential.token()
    first.credential.invalidate("dapi-an-older-token")
    assert await resolver.resolve(NS) is first


async def test_an_account_change_during_a_resolution_is_not_lost(
    make: Make, kube: FakeKube, accounts: FakeAccounts
) -> None:
    """A change heard while a resolution is in flight is seen by the next resolve."""
    put_pat_secret(kube)
    gate = kube.hold()
    resolver = make()
    in_flight = asyncio.ensure_future(resolver.resolve(NS))
    await until(lambda: len(kube.reads) == 1)
    resolver.on_account_change(labelled_change(accounts, "etl"))
    gate.set()
    await in_flight
    assert (await resolver.resolve(NS)).origin == "ServiceAccount 'etl'"


# --- cancellation and closing ---------------------------------------------------------------


async def test_a_caller_giving_up_does_not_cancel_the_shared_resolution(
    make: Make, kube: FakeKube
) -> None:
    """Cancelling one waiter leaves the resolution running for the others."""
    put_pat_secret(kube)
    gate = kube.hold()
    resolver = make()
    quitter = asyncio.ensure_future(resolver.resolve(NS))
    stayer = asyncio.ensure_future(resolver.resolve(NS))
    await until(lambda: len(kube.reads) == 1)
    quitter.cancel()
    gate.set()
    resolved = await stayer
    assert quitter.cancelled()
    assert resolved.origin == "Secret 'databricks-token'"


async def test_a_resolution_every_caller_left_is_still_held(make: Make, kube: FakeKube) -> None:
    """A resolution whose only caller gave up completes and serves the next caller."""
    put_pat_secret(kube)
    gate = kube.hold()
    resolver = make()
    quitter = asyncio.ensure_future(resolver.resolve(NS))
    await until(lambda: len(kube.reads) == 1)
    quitter.cancel()
    gate.set()
    await until(lambda: len(kube.reads) == 2)
    resolved = await resolver.resolve(NS)
    assert resolved.origin == "Secret 'databricks-token'"
    assert len(kube.reads) == 2


async def test_aclose_cancels_a_resolution_in_flight(make: Make, kube: FakeKube) -> None:
    """Closing cancels the pending resolution; its waiters see the cancellation."""
    kube.hold()
    resolver = make()
    waiter = asyncio.ensure_future(resolver.resolve(NS))
    await until(lambda: len(kube.reads) == 1)
    await resolver.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_aclose_drops_held_resolutions(make: Make, kube: FakeKube) -> None:
    """After closing nothing is held: a later resolve reads Kubernetes again."""
    put_pat_secret(kube)
    resolver = make()
    first = await resolver.resolve(NS)
    await resolver.aclose()
    assert await resolver.resolve(NS) is not first
    assert len(kube.reads) == 4


# --- start-up checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "service-account-federation", "service_account": "etl"},
        {"type": "pat", "secret": {"name": "team-pat"}},
        {"type": "oauth-m2m", "secret": {"name": "team-oauth"}},
        {"type": "oauth-m2m", "client_id": "sp", "secret": {"name": "team-oauth"}},
    ],
    ids=["service-account", "pat-secret", "oauth-secret", "oauth-client-id-secret"],
)
def test_a_policy_needing_kubernetes_without_it_is_a_config_error(
    make: Make, identity: dict[str, Any]
) -> None:
    """A policy that reads a Secret or mints a token is refused at start-up when kube is off."""
    settings = make_settings(namespaces={NS: {"identity": identity}})
    with pytest.raises(ConfigError) as raised:
        make(settings, with_kube=False)
    (problem,) = raised.value.problems
    assert problem.startswith(f"tenants.namespaces.{NS}.identity: needs the Kubernetes API")
    assert "kubernetes.mode is off" in problem


def test_a_default_policy_without_a_default_identity_is_a_config_error(make: Make) -> None:
    """``type: default`` when the environment holds no identity is refused at start-up."""
    settings = make_settings(namespaces={NS: {"identity": {"type": "default"}}})
    with pytest.raises(ConfigError, match=f"tenants.namespaces.{NS}.identity: type default"):
        make(settings, environ={}, with_kube=False)


def test_every_start_up_problem_is_listed(make: Make) -> None:
    """All policies that cannot work are named together, not one per restart."""
    settings = make_settings(
        namespaces={
            NS: {"identity": {"type": "pat", "secret": {"name": "p"}}},
            OTHER: {"identity": {"type": "default"}},
        }
    )
    with pytest.raises(ConfigError) as raised:
        make(settings, environ={}, with_kube=False)
    assert len(raised.value.problems) == 2


def test_policies_needing_kubernetes_are_accepted_with_it(make: Make) -> None:
    """With a kube client, Secret and ServiceAccount policies start."""
    settings = make_settings(
        namespaces={
            NS: {"identity": {"type": "pat", "secret": {"name": "p"}}},
            OTHER: {"identity": {"type": "service-account-federation", "service_account": "e"}},
        }
    )
    make(settings)


def test_inline_policies_need_no_kubernetes(make: Make) -> None:
    """A policy with its secret inline or in the environment starts without Kubernetes."""
    settings = make_settings(
        namespaces={
            NS: {"identity": {"type": "pat", "token_env": "TEAM_PAT"}},
            OTHER: {"identity": {"type": "default"}},
        }
    )
    make(settings, environ={**DEFAULT_ENV, "TEAM_PAT": TENANT_PAT}, with_kube=False)


def test_a_default_host_off_the_allow_list_is_a_config_error(make: Make) -> None:
    """The resolver refuses to start with a default identity for an unlisted host."""
    with pytest.raises(ConfigError, match="DATABRICKS_HOST"):
        make(environ={"DATABRICKS_HOST": "https://harvest.example", "DATABRICKS_TOKEN": "x"})


def test_an_azure_secret_policy_without_kubernetes_is_a_config_error(make: Make) -> None:
    """An azure-client-secret policy with a Secret needs Kubernetes, like pat and oauth-m2m."""
    identity = {
        "type": "azure-client-secret",
        "tenant_id": "t",
        "client_id": "c",
        "secret": {"name": "az"},
    }
    settings = make_settings(namespaces={NS: {"identity": identity}})
    with pytest.raises(ConfigError):
        make(settings, with_kube=False)


def test_a_default_policy_without_a_default_is_refused_with_kubernetes_too(make: Make) -> None:
    """``type: default`` with no default identity is a start-up error whatever kube is."""
    settings = make_settings(namespaces={NS: {"identity": {"type": "default"}}})
    with pytest.raises(ConfigError):
        make(settings, environ={})


async def test_a_policy_naming_an_unset_env_variable_refuses_only_that_tenant(make: Make) -> None:
    """An unset variable refuses its tenant (422 naming namespace, key and variable); the
    resolver starts and the other tenants resolve."""
    settings = make_settings(
        namespaces={
            NS: {"identity": {"type": "pat", "token_env": "TEAM_PAT"}},
            OTHER: {"identity": {"type": "pat", "token": TENANT_PAT}},
        }
    )
    resolver = make(settings, environ={})
    (refusal,) = await resolver.refusals()
    assert (refusal.namespace, refusal.reason) == (NS, "environment")
    with pytest.raises(IdentityMisconfigured) as raised:
        await resolver.resolve(NS)
    assert raised.value.status == 422
    assert f"namespace '{NS}' is refused" in raised.value.message
    assert f"tenants.namespaces.{NS}.identity.token_env" in raised.value.message
    assert "TEAM_PAT is not set" in raised.value.message
    assert (await resolver.resolve(OTHER)).namespace == OTHER


async def test_a_policy_naming_an_unreadable_token_file_refuses_only_that_tenant(
    make: Make, tmp_path: Any
) -> None:
    """A token file that is not there refuses its tenant with reason ``file``."""
    missing = str(tmp_path / "absent" / "token")
    identity = {"type": "pod-token-federation", "client_id": "sp", "token_file": missing}
    resolver = make(make_settings(namespaces={NS: {"identity": identity}}))
    (refusal,) = await resolver.refusals()
    assert refusal.reason == "file"
    with pytest.raises(IdentityMisconfigured, match=missing):
        await resolver.resolve(NS)


# --- what a resolution says -----------------------------------------------------------------


async def test_a_resolution_names_its_workspace_identity_and_origin(
    make: Make, kube: FakeKube
) -> None:
    """ResolvedIdentity carries the workspace from settings, the key with host, kind and origin."""
    put_oauth_secret(kube)
    resolved = await make().resolve(NS)
    assert isinstance(resolved, ResolvedIdentity)
    assert (resolved.namespace, resolved.workspace_name) == (NS, "prod")
    workspace = resolved.workspace
    assert (workspace.host, workspace.api_version, workspace.max_concurrent_requests) == (
        PROD,
        "2.1",
        7,
    )
    # The Secret and the client id it holds (masked): both are part of the identity.
    held = client_subject(OAUTH_KEYS["client_id"])
    assert resolved.key == f"oauth-m2m:secret/databricks-oauth/{held}@{PROD}"
    assert (resolved.kind, resolved.origin) == ("oauth-m2m", "Secret 'databricks-oauth'")


async def test_a_resolution_credential_is_cached_for_the_namespace(
    make: Make, kube: FakeKube
) -> None:
    """A namespace's credential is keyed by its namespace, identity key and host."""
    put_pat_secret(kube)
    credential = (await make().resolve(NS)).credential
    assert isinstance(credential, SecretHeldToken)
    assert credential.key == CacheKey(NS, "pat:secret/databricks-token", PROD)


async def test_the_default_identity_is_one_credential_for_all(make: Make) -> None:
    """Two namespaces on the default identity share its cache key but keep their own names."""
    resolver = make()
    mine, theirs = await resolver.resolve(NS), await resolver.resolve(OTHER)
    assert (mine.namespace, theirs.namespace) == (NS, OTHER)
    assert isinstance(mine.credential, CachedCredential)
    assert isinstance(theirs.credential, CachedCredential)
    assert mine.credential.key == theirs.credential.key
    assert mine.credential.key.namespace == SHARED_NAMESPACE
    assert mine.key == theirs.key == f"pat:inline@{PROD}"


async def test_an_annotated_workspace_is_the_resolution_workspace(
    make: Make, accounts: FakeAccounts
) -> None:
    """An account annotated with a listed workspace resolves to that workspace and host."""
    accounts.add("etl", annotations={"lakegate.io/databricks-workspace": "dev"})
    resolved = await make().resolve(NS)
    assert (resolved.workspace_name, resolved.workspace.host) == ("dev", DEV)
    assert resolved.key == f"service-account-federation:etl@{DEV}"


async def test_a_resolution_is_logged_without_a_secret(make: Make, kube: FakeKube) -> None:
    """One identity_resolved event names namespace, kind, origin and workspace; no secret."""
    kube.put(NS, "databricks-token", token=TENANT_PAT)
    resolver = make()
    with capture_logs() as logs:
        await resolver.resolve(NS)
    resolved = [e for e in logs if e["event"] == "identity_resolved"]
    assert resolved == [
        {
            "event": "identity_resolved",
            "log_level": "info",
            "namespace": NS,
            "kind": "pat",
            "origin": "Secret 'databricks-token'",
            "workspace": "prod",
        }
    ]
    assert TENANT_PAT not in str(logs)
    assert GATEWAY_PAT not in str(logs)


@pytest.mark.parametrize(
    ("found", "pin"),
    [
        ("account", {"service_account": "etl"}),
        ("secret", {"secret": "databricks-token"}),
        ("policy", {}),
        ("default", {}),
    ],
)
async def test_a_resolution_pins_what_it_was_found_through(
    make: Make, kube: FakeKube, accounts: FakeAccounts, found: str, pin: dict[str, str]
) -> None:
    """A run keeps the ServiceAccount or Secret discovery found; a policy or default, nothing."""
    if found == "account":
        accounts.add("etl")
    if found == "secret":
        put_pat_secret(kube)
    policy = {"identity": {"type": "pat", "secret": {"name": "databricks-token"}}}
    settings = make_settings(namespaces={NS: policy}) if found == "policy" else OPT_IN
    assert (await make(settings).resolve(NS)).pin == pin


@pytest.mark.parametrize(
    "labels",
    [{}, {"lakegate.io/databricks-enabled": "false"}, {"flyte.org/databricks-enabled": "true"}],
)
async def test_a_request_may_not_name_a_secret_the_namespace_did_not_offer(
    make: Make, kube: FakeKube, labels: dict[str, str]
) -> None:
    """A credential-shaped Secret without lakegate.io/databricks-enabled=true is refused when
    a request names it, with a 400 naming the Secret and the label; no token is read."""
    kube.put(NS, "ci-deploy-token", token=TENANT_PAT)
    kube.label_secret(NS, "ci-deploy-token", **labels)
    with pytest.raises(InvalidRequest) as caught:
        await make().resolve(NS, IdentityOverride(secret="ci-deploy-token"))
    assert caught.value.status == 400
    assert caught.value.field == "identity.secret"
    assert "ci-deploy-token" in caught.value.message
    assert "lakegate.io/databricks-enabled=true" in caught.value.message


async def test_a_run_already_pinned_to_a_secret_is_still_followed(
    make: Make, kube: FakeKube
) -> None:
    """Following a run pinned to a discovered (unlabelled) Secret needs no label."""
    put_pat_secret(kube)
    identity = await make().resolve(NS, IdentityOverride(secret="databricks-token", following=True))
    assert identity.kind == "pat"
