"""The gateway's default identity, read from the Databricks SDK's environment variables."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.identity import kinds
from gateway.identity.default import ORIGIN, default_plan
from gateway.identity.strategy import Plan, WorkspaceRef
from gateway.settings import Settings

PROD = "https://prod.cloud.databricks.com"
DEV = "https://dev.cloud.databricks.com"
SETTINGS = Settings.model_validate({"workspaces": {"prod": {"host": PROD}, "dev": {"host": DEV}}})

PAT = {"DATABRICKS_TOKEN": "dapi-default-0123456789"}
M2M = {"DATABRICKS_CLIENT_ID": "sp-gw", "DATABRICKS_CLIENT_SECRET": "dose-default-0123456789"}
OIDC = {"DATABRICKS_OIDC_TOKEN_FILEPATH": "/var/run/secrets/databricks/token"}
ARM = {"ARM_TENANT_ID": "tn", "ARM_CLIENT_ID": "arm-app", "ARM_CLIENT_SECRET": "arm-secret-0123"}
AKS = {
    "AZURE_TENANT_ID": "tn",
    "AZURE_CLIENT_ID": "aks-app",
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
}


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2NpLmV4YW1wbGUifQ.c2ln"
ENV_JWT = {"DATABRICKS_OIDC_TOKEN": JWT}


def plan_of(**environ: str) -> Plan | None:
    return default_plan(SETTINGS, {"DATABRICKS_HOST": PROD, **environ})


def secret_of(plan: Plan | None) -> str | None:
    assert plan is not None
    return plan.inline_secret.get_secret_value() if plan.inline_secret else None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (PAT, {"kind": "pat", "client_id": None}),
        (M2M, {"kind": "oauth-m2m", "client_id": "sp-gw"}),
        (
            OIDC,
            {"kind": "pod-token-federation", "token_file": OIDC["DATABRICKS_OIDC_TOKEN_FILEPATH"]},
        ),
        (
            {"DATABRICKS_OIDC_TOKEN_FILE": "/t", "DATABRICKS_CLIENT_ID": "sp-gw"},
            {"kind": "pod-token-federation", "token_file": "/t", "client_id": "sp-gw"},
        ),
        (ARM, {"kind": "azure-client-secret", "tenant_id": "tn", "client_id": "arm-app"}),
        (
            AKS,
            {
                "kind": "azure-workload-identity",
                "tenant_id": "tn",
                "client_id": "aks-app",
                "token_file": AKS["AZURE_FEDERATED_TOKEN_FILE"],
            },
        ),
        (
            {"DATABRICKS_OIDC_TOKEN": JWT, "DATABRICKS_CLIENT_ID": "sp-gw"},
            {"kind": "env-oidc", "client_id": "sp-gw"},
        ),
        (
            {"DATABRICKS_OIDC_TOKEN_ENV": "CI_JWT", "CI_JWT": JWT},
            {"kind": "env-oidc", "client_id": None},
        ),
    ],
    ids=[
        "pat",
        "oauth-m2m",
        "oidc-token-filepath",
        "oidc-token-file-with-client-id",
        "arm-client-secret",
        "azure-workload-identity",
        "env-oidc",
        "env-oidc-renamed",
    ],
)
def test_each_environment_gives_its_plan_kind(
    environ: dict[str, str], expected: dict[str, Any]
) -> None:
    """Each method set whole yields its kind."""
    plan = plan_of(**environ)
    assert plan is not None
    assert {field: getattr(plan, field) for field in expected} == expected


@pytest.mark.parametrize(
    ("environ", "secret"),
    [
        (PAT, PAT["DATABRICKS_TOKEN"]),
        (M2M, M2M["DATABRICKS_CLIENT_SECRET"]),
        (ARM, ARM["ARM_CLIENT_SECRET"]),
    ],
    ids=["pat", "oauth-m2m", "arm"],
)
def test_the_secret_is_held_inline_and_masked(environ: dict[str, str], secret: str) -> None:
    """The environment's secret is the plan's inline secret, never in its key or repr."""
    plan = plan_of(**environ)
    assert secret_of(plan) == secret
    assert plan is not None
    assert secret not in kinds.of(plan).key(plan)
    assert secret not in repr(plan)


@pytest.mark.parametrize(
    "environ", [PAT, M2M, OIDC, ARM, AKS], ids=["pat", "m2m", "oidc", "arm", "aks"]
)
def test_every_default_plan_is_shared_and_says_where_it_comes_from(environ: dict[str, str]) -> None:
    """The default identity is one for all namespaces (shared) and its origin says so."""
    plan = plan_of(**environ)
    assert plan is not None
    assert (plan.shared, plan.origin) == (True, ORIGIN)
    assert plan.workspace == WorkspaceRef("prod", PROD)


@pytest.mark.parametrize(
    "environ",
    [
        {"DATABRICKS_CLIENT_ID": "sp-gw"},
        {"ARM_TENANT_ID": "tn", "ARM_CLIENT_ID": "arm-app"},
        {"AZURE_TENANT_ID": "tn", "AZURE_CLIENT_ID": "aks-app"},
        {"DATABRICKS_TOKEN": "   "},
        {},
    ],
    ids=[
        "client-id-only",
        "arm-no-secret",
        "aks-no-file",
        "blank-token",
        "host-only",
    ],
)
def test_an_incomplete_credential_gives_no_default(environ: dict[str, str]) -> None:
    """A host with no complete credential means the gateway has no default identity."""
    assert plan_of(**environ) is None


@pytest.mark.parametrize("environ", [{}, ARM, AKS], ids=["nothing", "arm", "aks"])
def test_no_host_means_no_default(environ: dict[str, str]) -> None:
    """Without DATABRICKS_HOST there is no default identity (Azure's own variables are not
    Databricks credentials by themselves: AKS injects them into every pod)."""
    assert default_plan(SETTINGS, environ) is None


@pytest.mark.parametrize("host", [{}, {"DATABRICKS_HOST": "  "}], ids=["unset", "blank"])
def test_a_databricks_credential_without_a_host_names_the_host(host: dict[str, str]) -> None:
    """A DATABRICKS_HOST of only spaces counts as unset."""
    with pytest.raises(ConfigError) as raised:
        default_plan(SETTINGS, {**host, **PAT})
    (problem,) = raised.value.problems
    assert problem.startswith("environment DATABRICKS_HOST: is not set, but DATABRICKS_TOKEN is")


@pytest.mark.parametrize(
    ("auth_type", "kind"),
    [
        ("pat", "pat"),
        ("oauth-m2m", "oauth-m2m"),
        ("file-oidc", "pod-token-federation"),
        ("env-oidc", "env-oidc"),
        ("azure-client-secret", "azure-client-secret"),
        ("azure-workload-identity", "azure-workload-identity"),
    ],
)
def test_auth_type_selects_among_several(auth_type: str, kind: str) -> None:
    """DATABRICKS_AUTH_TYPE picks its credential over the SDK's order."""
    plan = plan_of(DATABRICKS_AUTH_TYPE=auth_type, **PAT, **M2M, **OIDC, **ARM, **AKS, **ENV_JWT)
    assert plan is not None
    assert plan.kind == kind


def test_auth_type_with_its_variables_missing_is_a_config_error() -> None:
    """An auth type whose variables are absent is a ConfigError listing what is available."""
    with pytest.raises(ConfigError) as raised:
        plan_of(DATABRICKS_AUTH_TYPE="oauth-m2m", **PAT, **OIDC)
    (problem,) = raised.value.problems
    assert problem.startswith("environment DATABRICKS_AUTH_TYPE: 'oauth-m2m'")
    assert "available: pat, file-oidc)" in problem


def test_auth_type_with_nothing_available_says_none() -> None:
    """An auth type with no credential at all says none is available."""
    with pytest.raises(ConfigError, match=r"available: none\)"):
        plan_of(DATABRICKS_AUTH_TYPE="pat")


def test_unknown_auth_type_is_a_config_error() -> None:
    """An auth type lakegate does not know is refused, not ignored."""
    with pytest.raises(ConfigError, match="DATABRICKS_AUTH_TYPE: 'azure-cli'"):
        plan_of(DATABRICKS_AUTH_TYPE="azure-cli", **PAT)


@pytest.mark.parametrize("environ", [PAT, {}], ids=["with-credential", "without"])
def test_a_host_off_the_allow_list_is_a_config_error(environ: dict[str, str]) -> None:
    """A default host not on the allow-list is a ConfigError naming DATABRICKS_HOST."""
    with pytest.raises(ConfigError) as raised:
        default_plan(SETTINGS, {"DATABRICKS_HOST": "https://harvest.example", **environ})
    (problem,) = raised.value.problems
    assert problem.startswith("environment DATABRICKS_HOST: https://harvest.example")
    assert "allow-list" in problem


@pytest.mark.parametrize(
    "host",
    ["dev.cloud.databricks.com", f"{DEV}/", DEV.replace("dev", "DEV"), f"  {DEV}  "],
    ids=["no-scheme", "trailing-slash", "upper-case", "spaces"],
)
def test_a_listed_host_is_found_however_written(host: str) -> None:
    """A host without scheme gets https://; slash, case and spaces do not matter."""
    plan = default_plan(SETTINGS, {"DATABRICKS_HOST": host, **PAT})
    assert plan is not None
    assert plan.workspace == WorkspaceRef("dev", DEV)


def test_a_host_without_scheme_is_taken_as_https() -> None:
    """A scheme-less host off the list is reported with the https:// it was given."""
    with pytest.raises(ConfigError, match=r"DATABRICKS_HOST: https://other\.example is not"):
        default_plan(SETTINGS, {"DATABRICKS_HOST": "other.example", **PAT})


def test_a_workspace_name_is_not_a_host() -> None:
    """DATABRICKS_HOST must be a host: an allow-list name is not accepted in its place."""
    with pytest.raises(ConfigError, match="DATABRICKS_HOST"):
        default_plan(SETTINGS, {"DATABRICKS_HOST": "prod", **PAT})
