"""The Databricks SDK's environment for the gateway's own identity: what is read, what is wrong,
and how check-config and start-up report it (exit 2, one line each, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.settings import sdk_env

HOST = {"DATABRICKS_HOST": "https://prod.cloud.databricks.com"}
PAT = {"DATABRICKS_TOKEN": "dapi-default-0123456789"}
M2M = {"DATABRICKS_CLIENT_ID": "sp-gw", "DATABRICKS_CLIENT_SECRET": "dose-default-0123456789"}
FILE = {"DATABRICKS_OIDC_TOKEN_FILEPATH": "/var/run/secrets/databricks/token"}
ENV_JWT = {"DATABRICKS_OIDC_TOKEN": "eyJ.x.y"}


def types(environ: dict[str, str]) -> list[str]:
    return [m.auth_type for m in sdk_env.methods(environ)]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (PAT, ["pat"]),
        (M2M, ["oauth-m2m"]),
        (ENV_JWT, ["env-oidc"]),
        ({"DATABRICKS_OIDC_TOKEN_ENV": "MY_JWT", "MY_JWT": "eyJ.a.b"}, ["env-oidc"]),
        ({"DATABRICKS_OIDC_TOKEN_ENV": "MY_JWT", **ENV_JWT}, []),
        (FILE, ["file-oidc"]),
        ({"DATABRICKS_OIDC_TOKEN_FILE": "/t"}, ["file-oidc"]),
        # A client id with a token file is the principal federation exchanges for: one method.
        ({"DATABRICKS_CLIENT_ID": "sp-gw", **FILE}, ["file-oidc"]),
        (
            {"ARM_TENANT_ID": "t", "ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s"},
            ["azure-client-secret"],
        ),
        (
            {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/f"},
            ["azure-workload-identity"],
        ),
        ({"DATABRICKS_TOKEN": "  "}, []),
    ],
)
def test_each_method_is_complete_only_with_all_its_variables(
    environ: dict[str, str], expected: list[str]
) -> None:
    assert types(environ) == expected


def test_a_complete_environment_is_chosen_without_problems() -> None:
    choice = sdk_env.choose({"DATABRICKS_HOST": "prod.cloud.databricks.com/", **M2M})
    assert choice.host == "https://prod.cloud.databricks.com"
    assert choice.method is not None
    assert choice.method.auth_type == "oauth-m2m"
    assert sdk_env.problems({**HOST, **M2M}) == []


def test_two_complete_methods_without_auth_type_name_both() -> None:
    (problem,) = sdk_env.problems({**HOST, **PAT, **M2M})
    assert "more than one authorization method configured" in problem
    assert (
        "pat (DATABRICKS_TOKEN) and oauth-m2m (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET)"
        in problem
    )
    assert "DATABRICKS_AUTH_TYPE" in problem
    assert PAT["DATABRICKS_TOKEN"] not in problem


def test_auth_type_settles_two_complete_methods() -> None:
    choice = sdk_env.choose({**HOST, **PAT, **M2M, "DATABRICKS_AUTH_TYPE": "pat"})
    assert choice.method == sdk_env.Method("pat", ("DATABRICKS_TOKEN",))


def test_an_unknown_auth_type_lists_the_valid_ones() -> None:
    (problem,) = sdk_env.problems({**HOST, **PAT, "DATABRICKS_AUTH_TYPE": "azure-cli"})
    assert problem.startswith("environment DATABRICKS_AUTH_TYPE: 'azure-cli' is not an auth type")
    assert "valid: pat, oauth-m2m, env-oidc, file-oidc, azure-client-secret" in problem


def test_an_auth_type_without_its_variables_says_what_it_needs() -> None:
    (problem,) = sdk_env.problems({**HOST, **PAT, "DATABRICKS_AUTH_TYPE": "oauth-m2m"})
    assert "needs DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET; available: pat" in problem


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (PAT, "DATABRICKS_TOKEN"),
        ({"DATABRICKS_CLIENT_ID": "sp-gw"}, "DATABRICKS_CLIENT_ID"),
        (FILE, "DATABRICKS_OIDC_TOKEN_FILEPATH"),
        (ENV_JWT, "DATABRICKS_OIDC_TOKEN"),
    ],
)
def test_a_credential_without_a_host_names_the_missing_host(
    environ: dict[str, str], named: str
) -> None:
    (problem,) = sdk_env.problems(environ)
    assert problem.startswith(f"environment DATABRICKS_HOST: is not set, but {named} is")


def test_a_renamed_oidc_variable_that_is_unset_is_named() -> None:
    found = sdk_env.problems({**HOST, "DATABRICKS_OIDC_TOKEN_ENV": "CI_JWT"})
    assert found == [
        "environment DATABRICKS_OIDC_TOKEN_ENV: names CI_JWT, which is not set or empty"
    ]


def test_a_client_secret_without_its_client_id_is_named() -> None:
    found = sdk_env.problems({**HOST, "DATABRICKS_CLIENT_SECRET": "dose-0123456789"})
    assert found == [
        "environment DATABRICKS_CLIENT_ID: is not set, but DATABRICKS_CLIENT_SECRET is"
    ]


def test_a_host_off_the_allow_list_is_named_when_asked() -> None:
    (problem,) = sdk_env.problems({**HOST, **PAT}, listed=lambda host: False)
    assert "https://prod.cloud.databricks.com is not on the workspaces allow-list" in problem


def test_a_malformed_host_is_named() -> None:
    (problem,) = sdk_env.problems({"DATABRICKS_HOST": "http://plain.example", **PAT})
    assert problem.startswith("environment DATABRICKS_HOST: 'http://plain.example' uses plain http")


def test_azure_variables_alone_are_nobodys_mistake() -> None:
    """AKS injects AZURE_* into pods; without a Databricks host they choose nothing."""
    arm = {"ARM_TENANT_ID": "t", "ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s"}
    aks = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/f"}
    assert sdk_env.problems({**arm, **aks}) == []
    assert len(sdk_env.problems({**HOST, **arm, **aks})) == 1


def test_nothing_set_is_no_problem_and_no_choice() -> None:
    assert sdk_env.problems({}) == []
    assert sdk_env.choose({}) == sdk_env.Choice(None, None)


# --- the pod's own token, in Flyte's order --------------------------------------------------

AWS_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
WELL_KNOWN = sdk_env.DEFAULT_POD_TOKEN_FILE


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        (
            "/etc/pod/token",
            {"AWS_WEB_IDENTITY_TOKEN_FILE": AWS_FILE},
            ("/etc/pod/token", AWS_FILE, WELL_KNOWN),
        ),
        (None, {"AWS_WEB_IDENTITY_TOKEN_FILE": AWS_FILE}, (AWS_FILE, WELL_KNOWN)),
        ("/etc/pod/token", {}, ("/etc/pod/token", WELL_KNOWN)),
        (None, {"AWS_WEB_IDENTITY_TOKEN_FILE": "  "}, (WELL_KNOWN,)),
        (WELL_KNOWN, {}, (WELL_KNOWN,)),
    ],
    ids=["explicit-aws-well-known", "aws-well-known", "explicit-well-known", "blank-aws", "once"],
)
def test_the_pod_token_is_looked_for_in_flytes_order(
    explicit: str | None, environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert sdk_env.pod_token_files(explicit, environ) == expected


# --- check-config and start-up ----------------------------------------------------------------

GATEWAY = """
workspaces:
  prod: {host: "https://prod.cloud.databricks.com"}
tenants: {}
"""


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_check_config_and_start_up_refuse_a_bad_environment_in_one_line_each(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY)
    for name, value in {**HOST, **PAT, **M2M, "DATABRICKS_OIDC_TOKEN_ENV": "CI_JWT"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CI_JWT", raising=False)
    assert main([command, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    # check-config prints one line per problem; serve one line in all, naming both.
    lines = [line for line in err.strip().splitlines() if "environment" in line]
    joined = " | ".join(lines)
    assert len(lines) == (2 if command == "check-config" else 1), err
    assert "more than one authorization method configured" in joined
    assert "DATABRICKS_OIDC_TOKEN_ENV: names CI_JWT" in joined
    assert "Traceback" not in err
    assert PAT["DATABRICKS_TOKEN"] not in err


def test_check_config_passes_a_good_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY)
    monkeypatch.setenv("DATABRICKS_HOST", "prod.cloud.databricks.com:443/")
    monkeypatch.setenv("DATABRICKS_TOKEN", PAT["DATABRICKS_TOKEN"])
    assert main(["check-config", "--config", str(path)]) == 0
    assert "ok (1 workspace(s)" in capsys.readouterr().out
