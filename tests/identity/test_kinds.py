"""Each identity kind: its problems, cache key, pin and environment as tables, and its fetch
against the emulated workspace and Entra ID, through the builder as the resolver uses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, TypeAdapter

from gateway.databricks.oauth import TokenClient
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable, TokenEndpointError
from gateway.identity import kinds, plans
from gateway.identity.builders import Builder, SecretHeldToken
from gateway.identity.cache import CachedCredential, TokenCache
from gateway.identity.principal import client_subject
from gateway.identity.strategy import (
    NEEDS_KUBERNETES,
    Environment,
    IdentityKind,
    Plan,
    WorkspaceRef,
)
from gateway.settings import IdentityOptions, IdentitySettings, sdk_env
from tests.fixtures.databricks_emulator import (
    DatabricksEmulator,
    EmulatorFactory,
    emulator_config,
)
from tests.identity.fakes import FakeKube, Minter
from tests.identity.test_plans import FROM_ENV, POLICY_TABLE, make_settings
from tests.support.jwt_issuer import AUDIENCE, Issuer, service_account_subject

PROD = "https://prod.cloud.databricks.com"
WS = WorkspaceRef("prod", PROD)
NS = "team-a"
ORIGIN = "tenant policy"
TOKEN_PATH = "/oidc/v1/token"
PAT = "dapi0123456789abcdef0123456789ab"
NEW_SECRET = "dose11111111111111111111111111111b"
SP_ID = "9a0e6b7c-1d2e-4f30-8a41-5b6c7d8e9f00"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_CLIENT_ID = "3c1b0f9e-2a4d-4c5e-8f60-718293a4b5c6"
ENTRA_SECRET = "Zx8Q~entra-client-secret-value-000000000"
WI_CLIENT_ID = "b7a4d2c1-9e3f-4a5b-8c6d-1f2e3d4c5b6a"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
SUBJECT = service_account_subject(NS, "etl")
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)
IDENTITY = TypeAdapter[IdentitySettings](IdentitySettings)


def ident(**fields: Any) -> IdentitySettings:
    return IDENTITY.validate_python(fields)


def nothing() -> None:
    """An on_invalidate hook that does nothing."""


# --- which kind, and what it is called ------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "kind"),
    [
        ({"type": "pat", "token": PAT}, kinds.PAT),
        ({"type": "oauth-m2m", "client_id": "c", "client_secret": "s"}, kinds.OAUTH_M2M),
        ({"type": "service-account-federation", "service_account": "e"}, kinds.SERVICE_ACCOUNT),
        ({"type": "pod-token-federation"}, kinds.POD_TOKEN),
        (
            {
                "type": "azure-client-secret",
                "tenant_id": "t",
                "client_id": "c",
                "client_secret": "s",
            },
            kinds.AZURE_CLIENT_SECRET,
        ),
        (
            {
                "type": "azure-workload-identity",
                "tenant_id": "t",
                "client_id": "c",
                "token_file": "/f",
            },
            kinds.AZURE_WORKLOAD_IDENTITY,
        ),
        ({"type": "default"}, None),
    ],
    ids=["pat", "oauth-m2m", "service-account", "pod-token", "azure-secret", "azure-wi", "default"],
)
def test_each_settings_model_has_its_kind(
    identity: dict[str, Any], kind: IdentityKind[Any] | None
) -> None:
    """A policy's identity is read by the kind of its type; ``default`` is no kind of its own."""
    assert kinds.for_settings(ident(**identity)) is kind
    if kind is not None:
        assert isinstance(ident(**identity), kind.settings)


def test_every_kind_is_registered_under_its_name() -> None:
    """The registry names each kind once, by the type its settings model declares."""
    assert set(kinds.KINDS) == {
        "pat",
        "oauth-m2m",
        "service-account-federation",
        "pod-token-federation",
        "azure-client-secret",
        "azure-workload-identity",
        "env-oidc",
    }
    assert all(kind.name == name for name, kind in kinds.KINDS.items())


# --- problems found at start-up -------------------------------------------------------------

UNSET = "environment TEAM_SECRET is not set or empty"


@pytest.mark.parametrize(
    ("identity", "environ", "kubernetes", "problems"),
    [
        ({"type": "pat", "token": PAT}, {}, False, []),
        ({"type": "pat", "secret": {"name": "p"}}, {}, False, [NEEDS_KUBERNETES]),
        ({"type": "pat", "secret": {"name": "p"}}, {}, True, []),
        ({"type": "pat", "token_env": "TEAM_SECRET"}, {}, True, [UNSET]),
        ({"type": "pat", "token_env": "TEAM_SECRET"}, {"TEAM_SECRET": ""}, True, [UNSET]),
        ({"type": "pat", "token_env": "TEAM_SECRET"}, {"TEAM_SECRET": "x"}, False, []),
        ({"type": "oauth-m2m", "secret": {"name": "o"}}, {}, False, [NEEDS_KUBERNETES]),
        (
            {"type": "oauth-m2m", "client_id": "c", "client_secret_env": "TEAM_SECRET"},
            {},
            False,
            [UNSET],
        ),
        (
            {"type": "service-account-federation", "service_account": "e"},
            {},
            False,
            [NEEDS_KUBERNETES],
        ),
        ({"type": "service-account-federation", "service_account": "e"}, {}, True, []),
        ({"type": "pod-token-federation"}, {}, False, []),
        (
            {
                "type": "azure-client-secret",
                "tenant_id": "t",
                "client_id": "c",
                "secret": {"name": "a"},
            },
            {},
            False,
            [NEEDS_KUBERNETES],
        ),
        (
            {
                "type": "azure-client-secret",
                "tenant_id": "t",
                "client_id": "c",
                "client_secret_env": "TEAM_SECRET",
            },
            {},
            True,
            [UNSET],
        ),
        (
            {
                "type": "azure-workload-identity",
                "tenant_id": "t",
                "client_id": "c",
                "token_file": "/f",
            },
            {},
            False,
            [],
        ),
    ],
    ids=[
        "pat-inline",
        "pat-secret-no-kube",
        "pat-secret-kube",
        "pat-env-unset",
        "pat-env-empty",
        "pat-env-set",
        "oauth-secret-no-kube",
        "oauth-env-unset",
        "sa-no-kube",
        "sa-kube",
        "pod-token",
        "azure-secret-no-kube",
        "azure-env-unset",
        "azure-wi",
    ],
)
def test_each_kind_names_its_start_up_problems(
    identity: dict[str, Any], environ: dict[str, str], kubernetes: bool, problems: list[str]
) -> None:
    """A Secret or ServiceAccount needs Kubernetes; a secret in the environment must be set."""
    settings = ident(**identity)
    kind = kinds.for_settings(settings)
    assert kind is not None
    assert kind.problems(settings, environ, kubernetes=kubernetes) == problems


# --- cache keys and pins --------------------------------------------------------------------

KEYS = [
    (Plan("pat", WS, ORIGIN, inline_secret=SecretStr(PAT)), "pat:inline"),
    (Plan("pat", WS, ORIGIN, secret_name="databricks-token"), "pat:secret/databricks-token"),
    (Plan("oauth-m2m", WS, ORIGIN, client_id="c"), f"oauth-m2m:{client_subject('c')}"),
    (
        Plan("oauth-m2m", WS, ORIGIN, client_id="c", secret_name="s"),
        f"oauth-m2m:secret/s/{client_subject('c')}",
    ),
    (
        Plan("service-account-federation", WS, ORIGIN, client_id="c", service_account="etl"),
        "service-account-federation:etl",
    ),
    (Plan("pod-token-federation", WS, ORIGIN, token_file="/t"), "pod-token-federation:/t"),
    (
        Plan("pod-token-federation", WS, ORIGIN, client_id="c", token_file="/t"),
        f"pod-token-federation:{client_subject('c')}",
    ),
    (
        Plan("azure-client-secret", WS, ORIGIN, tenant_id="t", client_id="c"),
        f"azure-client-secret:{client_subject('c')}",
    ),
    (
        Plan("azure-client-secret", WS, ORIGIN, client_id="c", secret_name="az"),
        f"azure-client-secret:secret/az/{client_subject('c')}",
    ),
    (
        Plan("azure-workload-identity", WS, ORIGIN, client_id="c", token_file="/f"),
        f"azure-workload-identity:{client_subject('c')}",
    ),
]


@pytest.mark.parametrize(
    ("plan", "key"),
    KEYS,
    ids=[
        "pat-inline",
        "pat-secret",
        "oauth-client-id",
        "oauth-secret",
        "service-account",
        "pod-token-file",
        "pod-token-client-id",
        "azure-client-id",
        "azure-secret",
        "azure-wi",
    ],
)
def test_each_kind_keys_its_most_specific_subject(plan: Plan, key: str) -> None:
    """The key is kind and subject: account, then Secret, then client id, then file."""
    assert kinds.of(plan).key(plan) == key


def test_an_inline_pat_key_is_fixed() -> None:
    """Inline PATs all share the key 'pat:inline': the key never derives from the value."""
    one = Plan("pat", WS, "o", inline_secret=SecretStr("dapi-one"))
    two = Plan("pat", WS, "o", inline_secret=SecretStr("dapi-two"))
    assert kinds.PAT.key(one) == kinds.PAT.key(two) == "pat:inline"


INLINE_SOURCES = {"token", "token_env", "client_secret", "client_secret_env"}


def test_no_key_or_repr_holds_a_secret_value() -> None:
    """Neither the key nor the repr of a plan with an inline secret shows its value."""
    rows = [identity for _, identity, _ in POLICY_TABLE if INLINE_SOURCES & identity.keys()]
    environ = {"TEAM_PAT": FROM_ENV}
    made = [plans.from_policy(make_settings(), NS, ident(**i), environ, None) for i in rows]
    assert len(made) == 6
    for plan in made:
        assert plan.inline_secret is not None
        value = plan.inline_secret.get_secret_value()
        assert value not in kinds.of(plan).key(plan)
        assert value not in repr(plan)


@pytest.mark.parametrize(
    ("plan", "pin"),
    [
        (
            Plan(
                "service-account-federation",
                WS,
                "ServiceAccount 'etl'",
                service_account="etl",
                discovered=True,
            ),
            {"service_account": "etl"},
        ),
        (
            Plan("service-account-federation", WS, ORIGIN, service_account="etl"),
            {},
        ),
        (
            Plan("pat", WS, "Secret 'nightly'", secret_name="nightly", discovered=True),
            {"secret": "nightly"},
        ),
        (Plan("pat", WS, ORIGIN, secret_name="team-pat"), {}),
        (
            Plan(
                "oauth-m2m",
                WS,
                "Secret 'databricks-oauth'",
                secret_name="databricks-oauth",
                discovered=True,
            ),
            {"secret": "databricks-oauth"},
        ),
        (Plan("oauth-m2m", WS, ORIGIN, client_id="c", inline_secret=SecretStr("s")), {}),
        (Plan("pod-token-federation", WS, ORIGIN, token_file="/t", shared=True), {}),
        (Plan("azure-client-secret", WS, ORIGIN, client_id="c", secret_name="az"), {}),
        (Plan("azure-workload-identity", WS, ORIGIN, client_id="c", token_file="/f"), {}),
    ],
    ids=[
        "discovered-account",
        "policy-account",
        "discovered-pat-secret",
        "policy-pat-secret",
        "discovered-oauth-secret",
        "policy-oauth-inline",
        "default-pod-token",
        "policy-azure-secret",
        "policy-azure-wi",
    ],
)
def test_only_a_discovered_plan_pins_its_account_or_secret(plan: Plan, pin: dict[str, str]) -> None:
    """A run keeps the ServiceAccount or Secret it was found through; a policy's plan pins
    nothing, since the policy names it again."""
    assert kinds.of(plan).pin(plan) == pin


# --- the gateway's environment --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "environ", "found"),
    [
        (kinds.PAT, {"DATABRICKS_TOKEN": "dapi-x"}, True),
        (kinds.PAT, {"DATABRICKS_TOKEN": "  "}, False),
        (kinds.OAUTH_M2M, {"DATABRICKS_CLIENT_ID": "c", "DATABRICKS_CLIENT_SECRET": "s"}, True),
        (kinds.OAUTH_M2M, {"DATABRICKS_CLIENT_ID": "c"}, False),
        (kinds.POD_TOKEN, {"DATABRICKS_OIDC_TOKEN_FILE": "/t"}, True),
        (kinds.POD_TOKEN, {"DATABRICKS_CLIENT_ID": "c"}, False),
        (
            kinds.AZURE_CLIENT_SECRET,
            {"ARM_TENANT_ID": "t", "ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s"},
            True,
        ),
        (kinds.AZURE_CLIENT_SECRET, {"ARM_TENANT_ID": "t", "ARM_CLIENT_ID": "c"}, False),
        (
            kinds.AZURE_WORKLOAD_IDENTITY,
            {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/f"},
            True,
        ),
        (kinds.AZURE_WORKLOAD_IDENTITY, {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}, False),
        (kinds.SERVICE_ACCOUNT, {"DATABRICKS_TOKEN": "dapi-x"}, False),
    ],
    ids=[
        "pat",
        "pat-blank",
        "oauth-m2m",
        "oauth-m2m-no-secret",
        "oidc-file",
        "oidc-no-file",
        "arm",
        "arm-no-secret",
        "aks",
        "aks-no-file",
        "service-account-never",
    ],
)
def test_each_kind_reads_its_sdk_variables(
    kind: IdentityKind[Any], environ: dict[str, str], found: bool
) -> None:
    """A kind finds settings of its own model only when all its variables are set."""
    settings = kind.from_environment(Environment(environ))
    assert (settings is not None) is found
    if settings is not None:
        assert isinstance(settings, kind.settings)


def test_the_default_order_is_the_sdks() -> None:
    """PAT, OAuth M2M, OIDC token (env, file), Entra client secret, Azure workload identity;
    the same order as the environment's reading in gateway.settings.sdk_env."""
    assert [kind.auth_type for kind in kinds.DEFAULT_ORDER] == list(sdk_env.AUTH_TYPES)
    assert [kind.auth_type for kind in kinds.DEFAULT_ORDER] == [
        "pat",
        "oauth-m2m",
        "env-oidc",
        "file-oidc",
        "azure-client-secret",
        "azure-workload-identity",
    ]


# --- fetching: the builder as the resolver uses it ------------------------------------------


Build = Callable[..., Builder]


@pytest.fixture
async def build(
    session: aiohttp.ClientSession, kube: FakeKube, served_issuer: Issuer
) -> AsyncIterator[Build]:
    """Builders over one token cache and the fake Kubernetes, which mints JWTs of the
    served issuer; all closed after."""
    kube.minter = Minter(served_issuer)
    cache = TokenCache()
    made: list[Builder] = []

    def make(*, authority: str = "https://login.microsoftonline.com/", **client: Any) -> Builder:
        tokens = TokenClient(session, retry=QUICK, **client)
        options = IdentityOptions(azure_authority=authority)
        builder = Builder(session, cache, options, kube, tokens=tokens)
        made.append(builder)
        return builder

    yield make
    for builder in made:
        await builder.aclose()
    await cache.aclose()


def credential(
    builder: Builder, plan: Plan, namespace: str = NS
) -> CachedCredential | SecretHeldToken:
    return builder.credential(plan, namespace, nothing)


def at(emulator: DatabricksEmulator, kind: str, **fields: Any) -> Plan:
    return Plan(kind, WorkspaceRef("emulated", emulator.url), ORIGIN, **fields)


async def workspace_status(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator, token: str
) -> int:
    """The status a Jobs API call with ``token`` gets: 200 when the workspace accepts it."""
    async with session.get(
        emulator.url + "/api/2.1/jobs/runs/list", headers=emulator.headers(token)
    ) as resp:
        return resp.status


@pytest.mark.parametrize(
    ("plan", "missing"),
    [
        (Plan("pat", WS, ORIGIN, inline_secret=SecretStr("  ")), "token"),
        (
            Plan("oauth-m2m", WS, ORIGIN, client_id="sp-1", inline_secret=SecretStr("")),
            "client secret",
        ),
        (
            Plan(
                "azure-client-secret",
                WS,
                ORIGIN,
                tenant_id="",
                client_id=" ",
                inline_secret=SecretStr("s"),
            ),
            "tenant id, client id",
        ),
        (
            Plan(
                "azure-client-secret",
                WS,
                ORIGIN,
                tenant_id="t",
                client_id="c",
                inline_secret=SecretStr(""),
            ),
            "client secret",
        ),
        (Plan("azure-workload-identity", WS, ORIGIN, tenant_id="t", client_id="c"), "token file"),
    ],
    ids=["pat", "oauth-m2m", "azure-identifiers", "azure-secret", "azure-wi-file"],
)
def test_a_blank_part_is_refused_when_built(build: Build, plan: Plan, missing: str) -> None:
    """An empty token, secret or identifier is refused before any fetch, naming the part."""
    with pytest.raises(CredentialUnavailable, match=f"needs a {missing}") as raised:
        credential(build(), plan)
    assert raised.value.namespace == NS


async def test_a_pat_is_its_own_token_and_never_expires(build: Build) -> None:
    """An inline PAT's fetch yields the value with no expiry, so the cache never refreshes it."""
    plan = Plan("pat", WS, ORIGIN, inline_secret=SecretStr(f" {PAT} "))
    token = await kinds.PAT.fetch(plan, NS, build())()
    assert (token.value, token.expires_at) == (PAT, None)


async def test_a_pat_secret_is_read_at_each_fetch(build: Build, kube: FakeKube) -> None:
    """An edited PAT Secret counts from the next call: its value is read at every use."""
    kube.put(NS, "databricks-token", token="dapi-old\n")
    cred = credential(build(), Plan("pat", WS, ORIGIN, secret_name="databricks-token"))
    assert await cred.token() == "dapi-old"
    kube.put(NS, "databricks-token", token="dapi-new")
    assert await cred.token() == "dapi-new"
    assert len(kube.reads) == 2


async def test_a_repaired_pat_secret_is_used_at_the_next_call(build: Build, kube: FakeKube) -> None:
    """A Secret holding a line break is refused until repaired, then used at once."""
    kube.put(NS, "databricks-token", token="dapi-bad\nX-Evil: 1")
    cred = credential(build(), Plan("pat", WS, ORIGIN, secret_name="databricks-token"))
    with pytest.raises(CredentialUnavailable) as caught:
        await cred.token()
    assert "databricks-token" in caught.value.message
    assert "'token'" in caught.value.message
    assert "dapi-bad" not in caught.value.message
    kube.put(NS, "databricks-token", token="dapi-good")
    assert await cred.token() == "dapi-good"


async def test_oauth_m2m_tokens_are_accepted_by_the_workspace(
    build: Build, session: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """Client id and secret, traded at the discovered endpoint, give a working token."""
    emulator = databricks_emulator
    plan = at(
        emulator,
        "oauth-m2m",
        client_id=emulator.client_id,
        inline_secret=SecretStr(emulator.client_secret),
    )
    token = await credential(build(), plan).token()
    assert await workspace_status(session, emulator, token) == 200


async def test_a_rotated_oauth_secret_is_used_after_a_refusal(
    build: Build,
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
    kube: FakeKube,
) -> None:
    """After a 401/403 invalidates the token, the next fetch re-reads the rotated Secret."""
    emulator = databricks_emulator
    kube.put(
        NS, "databricks-oauth", client_id=emulator.client_id, client_secret=emulator.client_secret
    )
    cred = credential(build(), at(emulator, "oauth-m2m", secret_name="databricks-oauth"))
    first = await cred.token()

    emulator.server.identity.rotate_secret(emulator.client_id, NEW_SECRET)
    emulator.server.identity.revoke_token(first)
    kube.put(NS, "databricks-oauth", client_id=emulator.client_id, client_secret=NEW_SECRET)
    assert await workspace_status(session, emulator, first) == 403
    cred.invalidate(first)

    second = await cred.token()
    assert second != first
    assert await workspace_status(session, emulator, second) == 200


async def test_a_wrong_oauth_secret_is_refused_by_the_token_endpoint(
    build: Build, databricks_emulator: DatabricksEmulator
) -> None:
    """invalid_client surfaces as a permanent TokenEndpointError for the namespace."""
    emulator = databricks_emulator
    plan = at(
        emulator, "oauth-m2m", client_id=emulator.client_id, inline_secret=SecretStr(NEW_SECRET)
    )
    with pytest.raises(TokenEndpointError) as raised:
        await credential(build(), plan).token()
    assert (raised.value.error_code, raised.value.http_status) == ("invalid_client", 401)
    assert raised.value.namespace == NS
    assert not raised.value.transient


async def test_an_oauth_secret_missing_its_client_secret_is_unavailable(
    build: Build, kube: FakeKube
) -> None:
    """Both keys are required; the error names the one that is missing."""
    kube.put(NS, "databricks-oauth", client_id="sp-1")
    cred = credential(build(), Plan("oauth-m2m", WS, ORIGIN, secret_name="databricks-oauth"))
    with pytest.raises(CredentialUnavailable, match="has no key 'client_secret'"):
        await cred.token()


# --- federation -----------------------------------------------------------------------------


def federated_sp(name: str, application_id: str, policy: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "application_id": application_id, "federation_policies": [policy]}


async def start_with(factory: EmulatorFactory, **identity: Any) -> DatabricksEmulator:
    return await factory(emulator_config(identity=identity))


async def test_a_projected_token_is_exchanged_and_re_read_for_the_next_fetch(
    build: Build,
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    """A refused token file is read again on the next fetch; its replacement is exchanged."""
    sp = federated_sp("etl", SP_ID, issuer.policy(SUBJECT))
    emulator = await start_with(databricks_emulator_factory, service_principals=[sp])
    path = tmp_path / "token"
    path.write_text(issuer.sign(SUBJECT, aud="not-for-databricks"))
    plan = at(emulator, "pod-token-federation", client_id=SP_ID, token_file=str(path))
    cred = credential(build(), plan)
    with pytest.raises(TokenEndpointError, match="audience"):
        await cred.token()
    path.write_text(issuer.sign(SUBJECT))
    assert await workspace_status(session, emulator, await cred.token()) == 200


async def test_without_client_id_the_account_wide_policy_applies(
    build: Build,
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    """No client_id: the account policy maps the JWT's subject to a service principal."""
    account_policy = {"issuer": issuer.iss, "audiences": [AUDIENCE], "jwks_json": issuer.jwks()}
    emulator = await start_with(
        databricks_emulator_factory,
        service_principals=[{"name": "etl", "application_id": SP_ID}],
        federation_policies=[account_policy],
    )
    path = tmp_path / "token"
    path.write_text(issuer.sign(SP_ID))
    cred = credential(build(), at(emulator, "pod-token-federation", token_file=str(path)))
    assert await workspace_status(session, emulator, await cred.token()) == 200


async def test_2000_submissions_over_100_namespaces_mint_and_exchange_100_times(
    build: Build,
    session: aiohttp.ClientSession,
    databricks_emulator_factory: EmulatorFactory,
    served_issuer: Issuer,
) -> None:
    """Minted tokens share the cache: a cold burst costs one TokenRequest and one exchange
    per namespace, and every namespace gets a token its own service principal can use."""
    namespaces = [f"team-{n:03d}" for n in range(100)]
    sps = [
        federated_sp(
            ns,
            f"00000000-0000-4000-8000-{n:012d}",
            served_issuer.policy(
                service_account_subject(ns, "etl"), jwks_uri=served_issuer.jwks_uri
            ),
        )
        for n, ns in enumerate(namespaces)
    ]
    emulator = await start_with(databricks_emulator_factory, service_principals=sps)
    builder = build()
    plans = {
        ns: at(
            emulator,
            "service-account-federation",
            client_id=sp["application_id"],
            service_account="etl",
            audience=AUDIENCE,
        )
        for ns, sp in zip(namespaces, sps, strict=True)
    }
    credentials = [credential(builder, plans[ns], ns) for ns in namespaces]

    async def submit(i: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return i % 100, await credentials[i % 100].token()

    tokens = dict(await asyncio.gather(*(submit(i) for i in range(2000))))
    assert isinstance(builder.kube, FakeKube)
    assert builder.kube.minter is not None
    mint = builder.kube.minter
    assert len(mint.calls) == 100
    assert {(ns, sa, tuple(aud), exp) for ns, sa, aud, exp in mint.calls} == {
        (ns, "etl", (AUDIENCE,), 3600) for ns in namespaces
    }
    stats = emulator.stats()["identity"]["token_requests"]
    assert stats["by_grant_type"] == {"token_exchange": 100}
    assert len(builder.cache) == 200
    assert await workspace_status(session, emulator, tokens[7]) == 200


# --- Entra ID -------------------------------------------------------------------------------


def entra_section(issuer: Issuer) -> dict[str, Any]:
    """One tenant: an app with a client secret, and one that trusts the issuer's SA tokens."""
    federated = {"issuer": issuer.iss, "subject": SUBJECT}
    apps = [
        {"client_id": ENTRA_CLIENT_ID, "name": "team-a-secret", "secrets": [ENTRA_SECRET]},
        {"client_id": WI_CLIENT_ID, "name": "team-a-wi", "federated_credentials": [federated]},
    ]
    return {"tenants": [{"tenant_id": TENANT, "apps": apps}]}


@pytest.fixture
async def azure(
    databricks_emulator_factory: EmulatorFactory, served_issuer: Issuer
) -> DatabricksEmulator:
    """An Azure workspace whose Entra ID tenant knows both apps."""
    config = emulator_config(cloud="AZURE", entra=entra_section(served_issuer))
    return await databricks_emulator_factory(config)


def entra_app(azure: DatabricksEmulator, secret: str) -> Plan:
    """The tenant's client-secret app, with ``secret`` given inline."""
    return at(
        azure,
        "azure-client-secret",
        tenant_id=TENANT,
        client_id=ENTRA_CLIENT_ID,
        inline_secret=SecretStr(secret),
    )


async def test_a_client_secret_token_opens_the_workspace(
    build: Build, session: aiohttp.ClientSession, azure: DatabricksEmulator
) -> None:
    """An Entra token for the Azure Databricks scope is accepted by the workspace API."""
    plan = entra_app(azure, ENTRA_SECRET)
    token = await credential(build(authority=azure.url + "/"), plan).token()
    assert await workspace_status(session, azure, token) == 200


async def test_an_entra_refusal_becomes_a_permanent_token_endpoint_error(
    build: Build, azure: DatabricksEmulator
) -> None:
    """A wrong secret is invalid_client (AADSTS7000215): not retried, one line, no secret."""
    wrong = "Zx8Q~not-the-secret-000000000000000000000"
    plan = entra_app(azure, wrong)
    with pytest.raises(TokenEndpointError, match="AADSTS7000215") as raised:
        await credential(build(authority=azure.url), plan).token()
    error = raised.value
    assert (error.error_code, error.http_status, error.transient) == ("invalid_client", 401, False)
    assert (error.namespace, error.source) == (NS, f"azure-client-secret ({ORIGIN})")
    assert wrong not in str(error)
    assert "\n" not in error.message, "Entra's trace lines are folded into one line"


async def test_workload_identity_re_reads_its_token_file_at_each_fetch(
    build: Build,
    session: aiohttp.ClientSession,
    azure: DatabricksEmulator,
    served_issuer: Issuer,
    tmp_path: Path,
) -> None:
    """A refused assertion is read again on the next fetch; the rotated one opens the API."""
    path = tmp_path / "azure-identity-token"
    path.write_text(served_issuer.sign(SUBJECT, aud="not-for-entra"))
    plan = at(
        azure,
        "azure-workload-identity",
        tenant_id=TENANT,
        client_id=WI_CLIENT_ID,
        token_file=str(path),
    )
    cred = credential(build(authority=azure.url), plan)
    with pytest.raises(TokenEndpointError, match="assertion audience"):
        await cred.token()
    path.write_text(served_issuer.sign(SUBJECT, aud=EXCHANGE_AUDIENCE))
    assert await workspace_status(session, azure, await cred.token()) == 200
