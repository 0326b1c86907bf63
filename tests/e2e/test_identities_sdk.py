"""Issue 12, end to end: the SDK's environment, issuer-aware federation, scopes, Secret names,
host spellings, discovery retries and Azure management tokens. REST API -> resolver -> the
fake Kubernetes API and the Databricks emulator (also playing Entra ID), counted at the
emulator: token requests by grant, Entra tokens by resource, faults injected, the principal
each run was created by.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.emulator.databricks.identity_config import Principal as EmulatedPrincipal
from gateway.errors import ConfigError
from tests.e2e.specs import spec
from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_SECRET_CLIENT_ID,
    AZURE_TENANT_ID,
    AZURE_WI_APP,
    AZURE_WI_CLIENT_ID,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SP,
    GATEWAY_NAMESPACE,
    GATEWAY_SA,
    NO_RETRY,
    POD_AUDIENCE,
    POD_CLIENT_ID,
    POD_SP,
    IdentityStack,
    IdentityStackFactory,
)
from tests.support.workspace_tokens import WorkspaceTokens

pytestmark = pytest.mark.e2e

RESOURCE_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg-data/"
    "providers/Microsoft.Databricks/workspaces/ws-prod"
)


def grants(stack: IdentityStack) -> dict[str, int]:
    return dict(stack.identity_stats()["token_requests"]["by_grant_type"])


def respelled(url: str) -> str:
    """Another spelling of the same workspace: upper-case scheme, a path, a trailing slash."""
    return url.replace("http://", "HTTP://") + "/oidc/"


async def test_env_oidc_is_the_gateways_own_identity_exchanged_once(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """DATABRICKS_OIDC_TOKEN_ENV names the variable holding the pod's JWT; the default
    identity federates with it as DATABRICKS_CLIENT_ID, one exchange for two namespaces."""

    def environ(stack: IdentityStack) -> dict[str, str]:
        jwt = stack.kube.mint_token(GATEWAY_NAMESPACE, GATEWAY_SA, [POD_AUDIENCE])
        return {
            "DATABRICKS_HOST": respelled(stack.emulator.url),
            "DATABRICKS_OIDC_TOKEN_ENV": "POD_JWT",
            "POD_JWT": jwt,
            "DATABRICKS_CLIENT_ID": POD_CLIENT_ID,
        }

    default = {"identity": {"type": "default"}}
    stack = await identity_stack_factory(
        tenants={"team-env-a": default, "team-env-b": default}, environ_of=environ
    )
    assert await stack.run_to_end("team-env-a", "env-oidc-a") == POD_SP
    assert await stack.run_to_end("team-env-b", "env-oidc-b") == POD_SP
    assert grants(stack) == {"token_exchange": 1}


async def test_two_default_methods_refuse_start_up_naming_both(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """PAT and OAuth M2M both complete, no DATABRICKS_AUTH_TYPE: the gateway does not start."""

    def environ(stack: IdentityStack) -> dict[str, str]:
        return {
            "DATABRICKS_HOST": stack.emulator.url,
            "DATABRICKS_TOKEN": "dapi" + "0" * 32,
            "DATABRICKS_CLIENT_ID": DEFAULT_CLIENT_ID,
            "DATABRICKS_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        }

    with pytest.raises(ConfigError) as raised:
        await identity_stack_factory(environ_of=environ)
    (problem,) = raised.value.problems
    assert "more than one authorization method configured: pat" in problem
    assert "oauth-m2m" in problem


async def test_auth_type_picks_one_and_every_host_spelling_is_one_cache_entry(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """The allow-list and DATABRICKS_HOST spell the workspace differently: one workspace,
    one client-credentials call for the shared default identity of two namespaces."""

    def environ(stack: IdentityStack) -> dict[str, str]:
        return {
            "DATABRICKS_HOST": respelled(stack.emulator.url),
            "DATABRICKS_TOKEN": "dapi" + "0" * 32,
            "DATABRICKS_CLIENT_ID": DEFAULT_CLIENT_ID,
            "DATABRICKS_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "DATABRICKS_AUTH_TYPE": "oauth-m2m",
        }

    default = {"identity": {"type": "default"}}
    stack = await identity_stack_factory(
        tenants={"team-a": default, "team-b": default},
        environ_of=environ,
        workspace=lambda url: {"host": url + "/"},
    )
    assert await stack.run_to_end("team-a", "host-a") == DEFAULT_SP
    assert await stack.run_to_end("team-b", "host-b") == DEFAULT_SP
    assert grants(stack) == {"client_credentials": 1}


async def test_a_workspace_issued_jwt_in_a_token_file_is_used_as_is(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    """A token file holding a JWT whose issuer is the workspace: no exchange, no token call;
    the run is the token's principal."""
    token_file = tmp_path / "workspace-token"
    policy = {"identity": {"type": "pod-token-federation", "token_file": str(token_file)}}
    stack = await identity_stack_factory(tenants={"team-ws": policy})
    tokens = WorkspaceTokens(stack.emulator.url, EmulatedPrincipal(POD_SP, POD_CLIENT_ID))
    stack.emulator.identity.add_token_source("workspace-issued", tokens)
    # Read at fetch time, so written after start-up like a projected token.
    token_file.write_text(tokens.token() + "\n")
    assert await stack.run_to_end("team-ws", "as-is-run") == POD_SP
    assert stack.identity_stats()["token_requests"]["total"] == 0
    assert tokens.authenticated >= 1


async def test_a_pat_in_a_token_file_is_never_sent_as_a_subject_token(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    """A 422 that says a PAT was found, without quoting it; the workspace sees no token call."""
    pat = "dapi" + "7" * 32
    token_file = tmp_path / "pat-in-a-token-file"
    token_file.write_text(pat + "\n")
    policy = {"identity": {"type": "pod-token-federation", "token_file": str(token_file)}}
    stack = await identity_stack_factory(tenants={"team-pat-file": policy})
    error = await stack.refused("team-pat-file")
    assert error.status == 422
    assert "Databricks personal access token" in (error.detail or "")
    assert pat not in str(error.problem)
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_scopes_and_secret_names_are_the_operators(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """identity.secret_names replaces databricks-oauth/databricks-token: a Secret of another
    name is found, the well-known one no longer is (and the refusal names the configured)."""
    stack = await identity_stack_factory(
        identity={"secret_names": ["dbx-creds"], "oauth_scopes": ["all-apis", "offline_access"]}
    )
    sp = stack.oauth_secret("team-named", secret="dbx-creds")
    assert await stack.run_to_end("team-named", "named-secret-run") == sp.name
    stack.pat_secret("team-old-name", secret="databricks-token")
    error = await stack.refused("team-old-name")
    assert error.status == 403
    assert "'dbx-creds'" in (error.detail or "")
    assert grants(stack) == {"client_credentials": 1}


async def test_discovery_is_retried_after_throttling(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Two 429s at OIDC discovery are waited out, as at the token endpoint."""
    stack = await identity_stack_factory()
    stack.emulator.fault(
        path="/oidc/.well-known/oauth-authorization-server", status=429, retry_after=0, count=2
    )
    sp = stack.oauth_secret("team-disco")
    assert await stack.run_to_end("team-disco", "discovery-run") == sp.name
    assert stack.emulator.stats()["faults"]["injected"] == 2
    assert grants(stack) == {"client_credentials": 1}


SECRET_POLICY = {
    "type": "azure-client-secret",
    "tenant_id": AZURE_TENANT_ID,
    "client_id": AZURE_SECRET_CLIENT_ID,
    "client_secret": AZURE_SECRET,
}
# The stack fills in token_file: its projected token for api://AzureADTokenExchange.
WORKLOAD_POLICY = {
    "type": "azure-workload-identity",
    "tenant_id": AZURE_TENANT_ID,
    "client_id": AZURE_WI_CLIENT_ID,
}


@pytest.mark.parametrize(
    ("policy", "app", "resource_id"),
    [
        (SECRET_POLICY, AZURE_SECRET_APP, RESOURCE_ID),
        (SECRET_POLICY, AZURE_SECRET_APP, None),
        (WORKLOAD_POLICY, AZURE_WI_APP, RESOURCE_ID),
    ],
    ids=["client-secret", "client-secret-no-resource-id", "workload-identity"],
)
async def test_an_entra_principal_sends_a_management_token_when_the_resource_id_is_set(
    identity_stack_factory: IdentityStackFactory,
    policy: dict[str, str],
    app: str,
    resource_id: str | None,
) -> None:
    """With azure_resource_id, Entra issues a management-resource token beside the Databricks
    one, proven the same way (both cached over two runs); without it, none is asked for."""
    extra = {"azure_resource_id": resource_id} if resource_id else {}
    stack = await identity_stack_factory(
        tenants={"team-az": {"identity": policy}}, workspace=lambda url: extra
    )
    assert await stack.run_to_end("team-az", "azure-run-1") == app
    assert await stack.run_to_end("team-az", "azure-run-2") == app
    issued = stack.emulator.entra.stats()["tokens_issued"]["by_resource"]
    expected = {"databricks": 1, "management": 1} if resource_id else {"databricks": 1}
    assert issued == expected


async def test_a_token_issued_with_under_a_minute_to_live_is_never_sent(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """The workspace issues 45 s tokens: lakegate fetches them but sends none to the Jobs API,
    in the request or in the background retries; the run waits SUBMITTING."""
    stack = await identity_stack_factory(token_ttl_seconds=45)
    stack.oauth_secret("team-short")
    submitted = await stack.client(retry=NO_RETRY).submit_body(
        "team-short", {"spec": spec("short-lived")}
    )
    assert (submitted.status, submitted.run["state"]) == (202, "SUBMITTING")
    # Polled: the emulator announces nothing; three fetches show the retries refuse too.
    async with asyncio.timeout(10):
        while True:
            if grants(stack).get("client_credentials", 0) >= 3:
                break
            await asyncio.sleep(0.05)
    stats = stack.identity_stats()
    assert stats["authenticated_requests"]["total"] == 0
    assert stats["auth_failures"]["total"] == 0
    assert stack.emulator.runs() == []
