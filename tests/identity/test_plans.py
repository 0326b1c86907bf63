"""Identity plans: the pure precedence decisions, checked with tables and no event loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from gateway.errors import ConfigError, CredentialUnavailable, HostNotAllowed, IdentityMisconfigured
from gateway.identity import kinds, plans
from gateway.identity.strategy import Plan, WorkspaceRef
from gateway.kube import ServiceAccountRef
from gateway.settings import IdentitySettings, Settings

PROD = "https://prod.cloud.databricks.com"
DEV = "https://dev.cloud.databricks.com"
PROD_WS = WorkspaceRef("prod", PROD)
DEV_WS = WorkspaceRef("dev", DEV)
NS = "team-a"
CLIENT_ID = "lakegate.io/databricks-client-id"
INLINE = "dapi-inline-0123456789abcdef"
FROM_ENV = "dose-env-0123456789abcdef"
DEFAULT_PLAN = Plan("pat", PROD_WS, "gateway default identity", shared=True)

IDENTITY = TypeAdapter[IdentitySettings](IdentitySettings)


def make_settings(
    *, identity: Mapping[str, Any] | None = None, default_workspace: str | None = "prod"
) -> Settings:
    return Settings.model_validate(
        {
            "workspaces": {"prod": {"host": PROD}, "dev": {"host": DEV}},
            "identity": dict(identity or {}),
            "tenants": {
                "defaults": {"workspace": default_workspace},
                "namespaces": {"team-dev": {"workspace": "dev"}},
            },
        }
    )


def ident(**fields: Any) -> IdentitySettings:
    return IDENTITY.validate_python(fields)


def account(
    name: str = "etl",
    *,
    namespace: str = NS,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> ServiceAccountRef:
    return ServiceAccountRef(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        resource_version="1",
        labels=dict(labels or {}),
        # An account names its service principal unless a test says otherwise.
        annotations={CLIENT_ID: f"sp-{name}"} if annotations is None else dict(annotations),
    )


# --- from_policy ----------------------------------------------------------------------------

POLICY_TABLE: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "pat inline",
        {"type": "pat", "token": INLINE},
        {"kind": "pat", "inline": INLINE, "secret_name": None},
    ),
    (
        "pat from env",
        {"type": "pat", "token_env": "TEAM_PAT"},
        {"kind": "pat", "inline": FROM_ENV, "secret_name": None},
    ),
    (
        "pat in a Secret",
        {"type": "pat", "secret": {"name": "team-pat"}},
        {"kind": "pat", "inline": None, "secret_name": "team-pat"},
    ),
    (
        "oauth inline",
        {"type": "oauth-m2m", "client_id": "sp-1", "client_secret": INLINE},
        {"kind": "oauth-m2m", "client_id": "sp-1", "inline": INLINE, "secret_name": None},
    ),
    (
        "oauth from env",
        {"type": "oauth-m2m", "client_id": "sp-1", "client_secret_env": "TEAM_PAT"},
        {"kind": "oauth-m2m", "client_id": "sp-1", "inline": FROM_ENV},
    ),
    (
        "oauth all in a Secret",
        {"type": "oauth-m2m", "secret": {"name": "sp"}},
        {"kind": "oauth-m2m", "client_id": None, "inline": None, "secret_name": "sp"},
    ),
    (
        "oauth client id in policy, secret in a Secret",
        {"type": "oauth-m2m", "client_id": "sp-1", "secret": {"name": "sp"}},
        {"kind": "oauth-m2m", "client_id": "sp-1", "inline": None, "secret_name": "sp"},
    ),
    (
        "service account with audience",
        {"type": "service-account-federation", "service_account": "etl", "audience": "aud-x"},
        {"kind": "service-account-federation", "service_account": "etl", "audience": "aud-x"},
    ),
    (
        "service account, default audience",
        {"type": "service-account-federation", "service_account": "etl", "client_id": "sp-2"},
        {"service_account": "etl", "client_id": "sp-2", "audience": "databricks"},
    ),
    (
        "pod token with its own file",
        {"type": "pod-token-federation", "client_id": "sp-3", "token_file": "/var/run/t"},
        {"kind": "pod-token-federation", "client_id": "sp-3", "token_file": "/var/run/t"},
    ),
    (
        "azure client secret inline",
        {
            "type": "azure-client-secret",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": INLINE,
        },
        {"kind": "azure-client-secret", "tenant_id": "t", "client_id": "c", "inline": INLINE},
    ),
    (
        "azure client secret from env",
        {
            "type": "azure-client-secret",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret_env": "TEAM_PAT",
        },
        {"kind": "azure-client-secret", "inline": FROM_ENV, "secret_name": None},
    ),
    (
        "azure client secret in a Secret",
        {
            "type": "azure-client-secret",
            "tenant_id": "t",
            "client_id": "c",
            "secret": {"name": "az"},
        },
        {"kind": "azure-client-secret", "inline": None, "secret_name": "az"},
    ),
    (
        "azure workload identity",
        {"type": "azure-workload-identity", "tenant_id": "t", "client_id": "c", "token_file": "/f"},
        {"kind": "azure-workload-identity", "tenant_id": "t", "client_id": "c", "token_file": "/f"},
    ),
]


@pytest.mark.parametrize(
    ("identity", "expected"),
    [pytest.param(i, e, id=name) for name, i, e in POLICY_TABLE],
)
def test_from_policy_builds_the_plan_of_each_identity_type(
    identity: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each identity type becomes a plan carrying exactly what the policy gave."""
    plan = plans.from_policy(
        make_settings(), NS, ident(**identity), {"TEAM_PAT": FROM_ENV}, DEFAULT_PLAN
    )
    inline = expected.pop("inline", "unchecked")
    if inline != "unchecked":
        got = plan.inline_secret.get_secret_value() if plan.inline_secret else None
        assert got == inline
    assert {field: getattr(plan, field) for field in expected} == expected
    assert (plan.workspace, plan.origin, plan.shared) == (PROD_WS, "tenant policy", False)


def test_from_policy_uses_the_namespace_workspace() -> None:
    """A policy plan goes to the namespace's own workspace, not the default one."""
    plan = plans.from_policy(
        make_settings(), "team-dev", ident(type="pat", token=INLINE), {}, DEFAULT_PLAN
    )
    assert plan.workspace == DEV_WS


def test_from_policy_federation_audience_falls_back_to_the_configured_default() -> None:
    """Without a policy audience, identity.default_audience wins over the token endpoint URL."""
    settings = make_settings(identity={"default_audience": "databricks"})
    identity = ident(type="service-account-federation", service_account="etl")
    plan = plans.from_policy(settings, NS, identity, {}, None)
    assert plan.audience == "databricks"


def test_from_policy_pod_token_falls_back_to_the_gateway_token_file() -> None:
    """A pod-token policy without its own file uses identity.pod_token_file."""
    settings = make_settings(identity={"pod_token_file": "/var/run/pod/token"})
    plan = plans.from_policy(settings, NS, ident(type="pod-token-federation"), {}, None)
    assert plan.token_file == "/var/run/pod/token"


def test_from_policy_pod_token_without_any_file_looks_where_flyte_does() -> None:
    """Nothing configured: AWS_WEB_IDENTITY_TOKEN_FILE, then the well-known path."""
    aws = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/aws/token"}
    plan = plans.from_policy(make_settings(), NS, ident(type="pod-token-federation"), aws, None)
    assert (plan.token_file, plan.token_fallbacks) == (
        "/var/run/aws/token",
        ("/var/run/secrets/databricks/token",),
    )
    bare = plans.from_policy(make_settings(), NS, ident(type="pod-token-federation"), {}, None)
    assert (bare.token_file, bare.token_fallbacks) == ("/var/run/secrets/databricks/token", ())


def test_from_policy_default_is_the_gateway_default_plan() -> None:
    """``type: default`` hands out the gateway's own plan unchanged."""
    plan = plans.from_policy(make_settings(), NS, ident(type="default"), {}, DEFAULT_PLAN)
    assert plan is DEFAULT_PLAN


def test_from_policy_default_without_a_default_identity_is_unavailable() -> None:
    """``type: default`` when the gateway has no identity is refused, naming DATABRICKS_HOST."""
    with pytest.raises(CredentialUnavailable, match="DATABRICKS_HOST") as raised:
        plans.from_policy(make_settings(), NS, ident(type="default"), {}, None)
    assert raised.value.namespace == NS


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "pat", "token_env": "TEAM_PAT"},
        {"type": "oauth-m2m", "client_id": "sp-1", "client_secret_env": "TEAM_PAT"},
        {
            "type": "azure-client-secret",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret_env": "TEAM_PAT",
        },
    ],
    ids=["pat", "oauth-m2m", "azure-client-secret"],
)
@pytest.mark.parametrize("environ", [{}, {"TEAM_PAT": ""}], ids=["unset", "empty"])
def test_from_policy_with_its_env_variable_missing_is_a_config_error(
    identity: dict[str, Any], environ: dict[str, str]
) -> None:
    """A secret named by an unset or empty environment variable is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="environment TEAM_PAT"):
        plans.from_policy(make_settings(), NS, ident(**identity), environ, None)


def test_from_policy_without_a_workspace_is_refused() -> None:
    """A policy identity for a namespace with no workspace anywhere is HostNotAllowed."""
    settings = make_settings(default_workspace=None)
    with pytest.raises(HostNotAllowed):
        plans.from_policy(settings, NS, ident(type="pat", token=INLINE), {}, None)


# --- workspace_of ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted",
    [
        "dev",
        DEV,
        f"{DEV}/",
        DEV.upper().replace("HTTPS", "https"),
        "dev.cloud.databricks.com",
        f"{DEV}/api",
        f"{DEV}:443",
    ],
    ids=[
        "name",
        "host",
        "host-with-slash",
        "host-upper-case",
        "host-without-scheme",
        "host-with-path",
        "host-with-default-port",
    ],
)
def test_workspace_of_finds_a_listed_workspace_by_name_or_host(wanted: str) -> None:
    """A wanted workspace is found by its allow-list name or its host, however written."""
    assert plans.workspace_of(make_settings(), NS, wanted) == DEV_WS


@pytest.mark.parametrize(
    "wanted",
    ["staging", "https://evil.example.com", "dev2.cloud.databricks.com", f"{DEV}.evil"],
    ids=["unknown-name", "unknown-host", "similar-host", "host-as-a-prefix"],
)
def test_workspace_of_refuses_a_workspace_off_the_allow_list(wanted: str) -> None:
    """An unlisted workspace is HostNotAllowed, naming it and what is listed."""
    with pytest.raises(HostNotAllowed) as raised:
        plans.workspace_of(make_settings(), NS, wanted)
    message = raised.value.message
    assert f"'{wanted}'" in message
    assert "(dev, prod)" in message
    assert "never sends a credential to an unlisted host" in message
    assert raised.value.namespace == NS
    assert raised.value.status == 403


def test_workspace_of_says_the_allow_list_is_empty() -> None:
    """With no workspaces listed, the refusal says the allow-list is empty."""
    with pytest.raises(HostNotAllowed, match=r"\(empty\)"):
        plans.workspace_of(Settings(), NS, PROD)


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [(NS, PROD_WS), ("team-dev", DEV_WS)],
    ids=["tenants-default", "own-policy"],
)
def test_workspace_of_uses_the_policy_then_the_default(
    namespace: str, expected: WorkspaceRef
) -> None:
    """Without a wanted one, the namespace's policy workspace wins over defaults.workspace."""
    assert plans.workspace_of(make_settings(), namespace) == expected


def test_workspace_of_without_any_workspace_explains_where_to_set_one() -> None:
    """No workspace for the namespace is HostNotAllowed listing the three ways to give one."""
    with pytest.raises(HostNotAllowed) as raised:
        plans.workspace_of(make_settings(default_workspace=None), NS)
    message = raised.value.message
    assert "'workspace' in its tenant policy" in message
    assert "'defaults.workspace'" in message
    assert plans.WORKSPACE_ANNOTATIONS[0] in message


# --- from_service_account -------------------------------------------------------------------

LAKEGATE_ON = {"lakegate.io/databricks-enabled": "true"}
FLYTE_ON = {"flyte.org/databricks-enabled": "true"}


@pytest.mark.parametrize(
    ("annotations", "client_id", "audience"),
    [
        (
            {"lakegate.io/databricks-client-id": "lg-sp", "lakegate.io/databricks-audience": "lg"},
            "lg-sp",
            "lg",
        ),
        (
            {"flyte.org/databricks-client-id": "fl-sp", "flyte.org/databricks-audience": "fl"},
            "fl-sp",
            "fl",
        ),
        (
            {
                "lakegate.io/databricks-client-id": "lg-sp",
                "flyte.org/databricks-client-id": "fl-sp",
                "lakegate.io/databricks-audience": "lg",
                "flyte.org/databricks-audience": "fl",
            },
            "lg-sp",
            "lg",
        ),
        (
            {
                "lakegate.io/databricks-client-id": "  ",
                "flyte.org/databricks-client-id": "fl-sp",
                "lakegate.io/databricks-audience": "",
                "flyte.org/databricks-audience": "fl",
            },
            "fl-sp",
            "fl",
        ),
        ({"flyte.org/databricks-client-id": "  fl-sp\t"}, "fl-sp", "databricks"),
    ],
    ids=["lakegate", "flyte", "lakegate-beats-flyte", "blank-lakegate-falls-to-flyte", "trimmed"],
)
def test_from_service_account_reads_lakegate_then_flyte_annotations(
    annotations: dict[str, str], client_id: str | None, audience: str
) -> None:
    """Client id and audience come from lakegate's annotations first, then Flyte's."""
    plan = plans.from_service_account(make_settings(), account(annotations=annotations))
    assert (plan.client_id, plan.audience) == (client_id, audience)


def test_from_service_account_names_the_account() -> None:
    """The plan federates as the account, says so in its origin, and names it in its key."""
    plan = plans.from_service_account(make_settings(), account("etl", labels=FLYTE_ON))
    assert plan.kind == "service-account-federation"
    assert plan.service_account == "etl"
    assert plan.origin == "ServiceAccount 'etl'"
    assert kinds.of(plan).key(plan) == "service-account-federation:etl"
    assert plan.workspace == PROD_WS


def test_from_service_account_default_audience_is_the_configured_one() -> None:
    """Without an audience annotation, identity.default_audience is used."""
    settings = make_settings(identity={"default_audience": "databricks"})
    assert plans.from_service_account(settings, account()).audience == "databricks"


def test_from_service_account_default_audience_is_flytes_whatever_the_workspace() -> None:
    """Without an audience annotation or identity.default_audience, minted tokens carry
    Flyte's audience ``databricks``, also for an account pointing at another workspace."""
    annotated = account(annotations={CLIENT_ID: "sp-1", "lakegate.io/databricks-workspace": "dev"})
    plan = plans.from_service_account(make_settings(), annotated)
    assert (plan.workspace, plan.audience) == (DEV_WS, "databricks")


@pytest.mark.parametrize(
    "annotations",
    [{}, {CLIENT_ID: ""}, {CLIENT_ID: "   ", "flyte.org/databricks-client-id": "\t"}],
    ids=["none", "empty", "blank"],
)
def test_from_service_account_without_a_client_id_is_refused(annotations: dict[str, str]) -> None:
    """A labelled account naming no service principal is no identity: the refusal names the
    account and the missing annotation."""
    with pytest.raises(IdentityMisconfigured) as caught:
        plans.from_service_account(make_settings(), account("etl", annotations=annotations))
    assert "ServiceAccount 'etl'" in caught.value.message
    assert CLIENT_ID in caught.value.message
    assert caught.value.status == 422


@pytest.mark.parametrize("wanted", ["dev", DEV], ids=["by-name", "by-host"])
def test_from_service_account_workspace_annotation_picks_a_listed_workspace(wanted: str) -> None:
    """The workspace annotation may name a listed workspace or its host."""
    annotated = account(annotations={CLIENT_ID: "sp-1", "lakegate.io/databricks-workspace": wanted})
    assert plans.from_service_account(make_settings(), annotated).workspace == DEV_WS


def test_from_service_account_workspace_annotation_off_the_list_is_refused() -> None:
    """An annotation pointing at an unlisted host is HostNotAllowed, not followed."""
    annotated = account(
        annotations={
            CLIENT_ID: "sp-1",
            "lakegate.io/databricks-workspace": "https://harvest.example",
        }
    )
    with pytest.raises(HostNotAllowed, match=r"harvest\.example") as raised:
        plans.from_service_account(make_settings(), annotated)
    assert raised.value.namespace == NS


def test_from_service_account_without_any_workspace_is_refused() -> None:
    """No annotation and no tenant workspace is HostNotAllowed."""
    with pytest.raises(HostNotAllowed):
        plans.from_service_account(make_settings(default_workspace=None), account())


# --- choose_account -------------------------------------------------------------------------


def test_choose_account_of_none_is_none() -> None:
    """No labelled account: nothing to choose."""
    assert plans.choose_account(NS, []) is None


def test_choose_account_of_one_is_that_one() -> None:
    """One labelled account is the namespace's."""
    only = account("etl")
    assert plans.choose_account(NS, [only]) is only


@pytest.mark.parametrize("names", [["b-sa", "a-sa"], ["c-sa", "a-sa", "b-sa"]], ids=["2", "3"])
def test_choose_account_of_several_is_the_operators_error(names: list[str]) -> None:
    """Two or more labelled accounts are refused, naming them sorted and the way out."""
    with pytest.raises(CredentialUnavailable) as raised:
        plans.choose_account(NS, [account(n) for n in names])
    assert ", ".join(sorted(names)) in raised.value.message
    assert "identity.service_account" in raised.value.message
    assert (raised.value.namespace, raised.value.source) == (NS, "ServiceAccounts")


# --- from_secret ----------------------------------------------------------------------------


def held(keys: list[str]) -> dict[str, bytes]:
    """A Secret's data with ``keys``; its client id, when it has one, is ``sp-held``."""
    return {key: b"sp-held" if key == "client_id" else b"value" for key in keys}


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        (["client_id", "client_secret"], "oauth-m2m"),
        (["token"], "pat"),
        (["client_id", "client_secret", "token"], "oauth-m2m"),
        (["host", "token"], "pat"),
    ],
    ids=["oauth", "pat", "both-prefers-oauth", "extra-keys"],
)
def test_from_secret_picks_the_kind_by_its_keys(keys: list[str], kind: str) -> None:
    """client_secret means OAuth M2M, token means PAT; OAuth wins when both are there."""
    plan = plans.from_secret(make_settings(), NS, "creds", held(keys))
    assert (plan.kind, plan.secret_name, plan.origin) == (kind, "creds", "Secret 'creds'")
    client_id = "sp-held" if kind == "oauth-m2m" else None
    assert (plan.client_id, plan.inline_secret, plan.shared) == (client_id, None, False)
    assert plan.workspace == PROD_WS


@pytest.mark.parametrize(
    ("value", "client_id"),
    [(b"  sp-held\n", "sp-held"), (b"", None), (b"sp held", None), (b"\xff", None)],
    ids=["trimmed", "empty", "inner-space", "not-utf8"],
)
def test_from_secret_holds_the_secrets_client_id_when_it_is_one(
    value: bytes, client_id: str | None
) -> None:
    """The plan carries the Secret's client id (whom runs are created as), trimmed; a
    malformed one is left to the fetch, which refuses it naming the key."""
    data = {"client_id": value, "client_secret": b"dose-1"}
    assert plans.from_secret(make_settings(), NS, "creds", data).client_id == client_id


@pytest.mark.parametrize(
    "keys", [[], ["client_id"], ["password", "username"]], ids=["empty", "client-id-only", "other"]
)
def test_from_secret_with_neither_kind_of_keys_is_unavailable(keys: list[str]) -> None:
    """A Secret with no usable keys is refused, naming the keys each kind needs."""
    with pytest.raises(CredentialUnavailable) as raised:
        plans.from_secret(make_settings(), NS, "creds", held(keys))
    assert "'client_secret'" in raised.value.message
    assert "'token'" in raised.value.message
    assert (raised.value.namespace, raised.value.source) == (NS, "Secret 'creds'")


def test_from_secret_needs_both_oauth_keys_for_oauth() -> None:
    """A Secret with client_secret but no client_id is not OAuth M2M (its fetch would fail)."""
    with pytest.raises(CredentialUnavailable):
        plans.from_secret(make_settings(), NS, "creds", held(["client_secret"]))


# --- is_enabled and messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "enabled"),
    [
        (LAKEGATE_ON, True),
        (FLYTE_ON, True),
        ({"lakegate.io/databricks-enabled": "false", **FLYTE_ON}, True),
        ({"lakegate.io/databricks-enabled": "True"}, False),
        ({"lakegate.io/databricks-enabled": "false"}, False),
        ({"app": "etl"}, False),
        ({}, False),
    ],
    ids=["lakegate", "flyte", "either", "capitalised", "false", "other", "none"],
)
def test_is_enabled_needs_one_label_exactly_true(labels: dict[str, str], enabled: bool) -> None:
    """An account is enabled by lakegate's or Flyte's label with the value 'true'."""
    assert plans.is_enabled(account(labels=labels)) is enabled


def test_not_configured_message_with_kubernetes_names_every_way() -> None:
    """With Kubernetes, the refusal names the tenants file, the label and both Secrets."""
    message = plans.not_configured_message(NS, kubernetes=True)
    for part in ("tenants file", plans.ENABLED_SELECTORS[0], plans.OAUTH_SECRET, plans.PAT_SECRET):
        assert part in message


def test_not_configured_message_without_kubernetes_names_only_the_tenants_file() -> None:
    """Without Kubernetes, labels and Secrets are not offered as a way out."""
    message = plans.not_configured_message(NS, kubernetes=False)
    assert "tenants file" in message
    assert plans.ENABLED_SELECTORS[0] not in message
    assert plans.OAUTH_SECRET not in message


def test_only_plans_found_in_the_namespace_are_discovered() -> None:
    """A labelled account's or a Secret's plan is discovered; the tenant policy's is not."""
    settings = make_settings()
    assert plans.from_service_account(settings, account()).discovered
    assert plans.from_secret(settings, NS, "creds", held(["token"])).discovered
    identity = ident(type="pat", secret={"name": "creds"})
    assert not plans.from_policy(settings, NS, identity, {}, None).discovered


def test_a_service_account_token_secret_is_never_taken_for_a_pat() -> None:
    """A Kubernetes token Secret (token, ca.crt, namespace) is refused, not sent to Databricks."""
    with pytest.raises(CredentialUnavailable, match="Kubernetes ServiceAccount token"):
        plans.from_secret(
            make_settings(), NS, "default-token-x", held(["ca.crt", "namespace", "token"])
        )


@pytest.mark.parametrize(
    ("prefix", "other"), [("flyte.org", "lakegate.io"), ("lakegate.io", "flyte.org")]
)
def test_a_missing_client_id_is_named_in_the_family_the_account_was_set_up_with(
    prefix: str, other: str
) -> None:
    """A ServiceAccount set up for Flyte is told of Flyte's annotation, one set up for
    lakegate of lakegate's."""
    labelled = account(labels={f"{prefix}/databricks-enabled": "true"})
    message = plans.missing_client_id(NS, [labelled]).message
    assert f"{prefix}/databricks-enabled=true" in message
    assert f"{prefix}/databricks-client-id annotation" in message
    assert other not in message


def test_the_not_configured_message_names_flytes_label_beside_lakegates() -> None:
    message = plans.not_configured_message(NS, kubernetes=True)
    assert "lakegate.io/databricks-enabled=true" in message
    assert "flyte.org/databricks-enabled=true" in message
    assert "client id" in message
