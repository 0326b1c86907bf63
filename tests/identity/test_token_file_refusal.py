"""A token file holding something other than a JWT (a PAT, say) is refused naming the file
and the setting or variable that pointed to it, and is never sent anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import IdentityMisconfigured
from gateway.identity import sources, token_places
from gateway.identity.strategy import PlanContext, WorkspaceRef
from gateway.settings import Settings, sdk_env
from tests.fixtures.identity_stack import POD_CLIENT_ID, IdentityStack, IdentityStackFactory

PAT = "dapi" + "7" * 32


def context(environ: dict[str, str], *, shared: bool, pod_token_file: str | None = None) -> Any:
    raw: dict[str, Any] = {"workspaces": {"ws": {"host": "https://dbc-1.example"}}}
    if pod_token_file:
        raw["identity"] = {"pod_token_file": pod_token_file}
    return PlanContext(
        Settings.model_validate(raw),
        "" if shared else "team-a",
        WorkspaceRef("ws", "https://dbc-1.example"),
        environ=environ,
        shared=shared,
    )


@pytest.mark.parametrize(
    ("token_file", "environ", "shared", "configured", "expected"),
    [
        ("/p/policy", {}, False, None, "tenants.namespaces.team-a.identity.token_file"),
        (None, {}, False, "/p/configured", "identity.pod_token_file"),
        ("/p/env", {"DATABRICKS_OIDC_TOKEN_FILEPATH": "/p/env"}, True, None,
         "environment DATABRICKS_OIDC_TOKEN_FILEPATH"),
        ("/p/env", {"DATABRICKS_OIDC_TOKEN_FILE": " /p/env "}, True, None,
         "environment DATABRICKS_OIDC_TOKEN_FILE"),
    ],
    ids=["tenant-policy", "pod-token-file", "filepath-variable", "file-alias"],
)  # fmt: skip
def test_the_first_place_is_named_by_what_set_it(
    token_file: str | None,
    environ: dict[str, str],
    shared: bool,
    configured: str | None,
    expected: str,
) -> None:
    where = context(environ, shared=shared, pod_token_file=configured)
    places = token_places.pod_token_places(token_file, where)
    assert places[0] == (token_file or configured, expected)
    assert places[-1] == (sdk_env.DEFAULT_POD_TOKEN_FILE, token_places.DEFAULT_PLACE)


def test_the_aws_variable_is_named_as_the_second_place() -> None:
    where = context({"AWS_WEB_IDENTITY_TOKEN_FILE": "/aws/token"}, shared=False)
    places = token_places.pod_token_places("/p/policy", where)
    assert places[1] == ("/aws/token", "environment AWS_WEB_IDENTITY_TOKEN_FILE")


async def test_a_pat_found_in_a_fallback_place_is_refused_naming_that_place(
    tmp_path: Path,
) -> None:
    """The first place is missing, the AWS one holds a PAT: the refusal names the AWS file
    and its variable, says a PAT was found, and never quotes it."""
    aws = tmp_path / "aws-token"
    aws.write_text(PAT + "\n")
    settings = {str(tmp_path / "absent"): "identity.pod_token_file"}
    settings[str(aws)] = "environment AWS_WEB_IDENTITY_TOKEN_FILE"
    read = sources.token_file(
        tmp_path / "absent", namespace="team-a", fallbacks=[str(aws)], settings=settings
    )
    with pytest.raises(IdentityMisconfigured) as raised:
        await read()
    message = raised.value.message
    assert f"token file {aws} (named by environment AWS_WEB_IDENTITY_TOKEN_FILE)" in message
    assert "Databricks personal access token (dapi…, 36 characters), not a JWT" in message
    assert PAT not in message


async def refused_detail(stack: IdentityStack, namespace: str) -> str:
    error = await stack.refused(namespace)
    assert error.status == 422
    assert PAT not in str(error.problem)
    assert stack.identity_stats()["token_requests"]["total"] == 0
    return error.detail or ""


@pytest.mark.e2e
async def test_a_tenant_policys_token_file_is_named_with_its_key(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    token_file = tmp_path / "pat-in-a-token-file"
    token_file.write_text(PAT + "\n")
    policy = {"identity": {"type": "pod-token-federation", "token_file": str(token_file)}}
    stack = await identity_stack_factory(tenants={"team-pat-file": policy})
    detail = await refused_detail(stack, "team-pat-file")
    assert str(token_file) in detail
    assert "tenants.namespaces.team-pat-file.identity.token_file" in detail
    assert "personal access token" in detail


@pytest.mark.e2e
async def test_identity_pod_token_file_is_named(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    token_file = tmp_path / "pod-token-with-a-pat"
    token_file.write_text(PAT)
    policy = {"identity": {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}}
    stack = await identity_stack_factory(
        tenants={"team-pod": policy}, identity={"pod_token_file": str(token_file)}
    )
    detail = await refused_detail(stack, "team-pod")
    assert f"token file {token_file} (named by identity.pod_token_file)" in detail


@pytest.mark.e2e
async def test_the_sdk_variable_of_the_gateways_own_identity_is_named(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    token_file = tmp_path / "oidc-token-with-a-pat"
    token_file.write_text(PAT)

    def environ(stack: IdentityStack) -> dict[str, str]:
        return {
            "DATABRICKS_HOST": stack.emulator.url,
            "DATABRICKS_CLIENT_ID": POD_CLIENT_ID,
            "DATABRICKS_OIDC_TOKEN_FILEPATH": str(token_file),
        }

    stack = await identity_stack_factory(
        tenants={"team-env": {"identity": {"type": "default"}}}, environ_of=environ
    )
    detail = await refused_detail(stack, "team-env")
    assert f"token file {token_file} (named by environment DATABRICKS_OIDC_TOKEN_FILEPATH)" in (
        detail
    )


def test_azures_federated_token_file_is_named_by_its_variable() -> None:
    where = context({"AZURE_FEDERATED_TOKEN_FILE": "/azure/token"}, shared=True)
    assert token_places.azure_token_places("/azure/token", where) == (
        ("/azure/token", "environment AZURE_FEDERATED_TOKEN_FILE"),
    )
    tenant = context({}, shared=False)
    assert token_places.azure_token_places("/t/token", tenant) == (
        ("/t/token", "tenants.namespaces.team-a.identity.token_file"),
    )
