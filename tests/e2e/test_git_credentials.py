"""Entra ID tokens instead of PATs for Azure DevOps Git folders (issue 17), end to end.

A namespace with an Azure service principal and ``git_credentials: entra`` runs jobs that
take their code from Azure DevOps: lakegate puts an Entra token for Azure DevOps in the
principal's Databricks Git credential before each such run needs it, refreshes it once the
emulator's clock has moved past its expiry, and writes it once for a burst of submissions.
Without the setting nothing touches Git credentials.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.identity_stack import (
    AZURE_TENANT_ID,
    AZURE_WI_APP,
    AZURE_WI_CLIENT_ID,
    IdentityStackFactory,
)
from tests.gitcreds import stack as azure
from tests.gitcreds.stack import DEVOPS_RESOURCE, AzureStack, AzureStackFactory, ado_spec

pytestmark = pytest.mark.e2e
azure_stack_factory = azure.azure_stack_factory

NS = "team-ado"
ENABLED = {NS: {"identity": azure.azure_identity(), "git_credentials": "entra"}}


def only_credential(stack: AzureStack) -> dict[str, object]:
    credentials = stack.emulator.git_credentials()
    assert len(credentials) == 1, credentials
    return credentials[0]


async def test_azure_devops_run_gets_an_entra_git_credential_kept_fresh(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """The run succeeds with the principal's Git credential holding an Entra token for Azure
    DevOps; after the emulator's clock passes that token's expiry the next run succeeds too,
    because lakegate replaced the token (same credential, updated)."""
    stack = await azure_stack_factory(tenants=ENABLED)
    first = await stack.finish(NS, await stack.submit(NS, ado_spec("ado-1")))
    assert first["state"] == "SUCCEEDED", first
    held = only_credential(stack)
    assert held["principal"] == azure.APP
    assert held["git_provider"] == "azureDevOpsServices"
    assert held["git_username"] == azure.APP_ID
    assert held["token_resource"] == DEVOPS_RESOURCE
    assert held["token_valid"] is True
    expires_ms = held["token_expires_ms"]
    assert isinstance(expires_ms, int)

    stack.emulator.advance(expires_ms / 1000 - stack.emulator.clock.now() + 60)
    assert only_credential(stack)["token_valid"] is False
    second = await stack.finish(NS, await stack.submit(NS, ado_spec("ado-2")))
    assert second["state"] == "SUCCEEDED", second
    again = only_credential(stack)
    assert again["credential_id"] == held["credential_id"]
    assert again["token_valid"] is True
    assert stack.devops_tokens() == 2
    assert stack.credential_calls("POST") == 1
    assert stack.credential_calls("PATCH") == 1


async def test_fifty_concurrent_submissions_make_one_token_request_and_one_update(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """50 Azure DevOps runs submitted at once for one namespace whose credential holds an
    expired token cost Entra one Azure DevOps token (and one Databricks token, since that
    expired too) and the Git Credentials API one list and one update."""
    stack = await azure_stack_factory(tenants=ENABLED)
    await stack.finish(NS, await stack.submit(NS, ado_spec("warm-up")))
    stack.emulator.advance(3600)
    tokens, requests, lists = (
        stack.devops_tokens(),
        stack.entra_requests(),
        stack.credential_calls("GET"),
    )
    patches, posts = stack.credential_calls("PATCH"), stack.credential_calls("POST")

    runs = await asyncio.gather(*(stack.submit(NS, ado_spec(f"burst-{i}")) for i in range(50)))
    finals = await asyncio.gather(*(stack.finish(NS, run) for run in runs))
    assert {run["state"] for run in finals} == {"SUCCEEDED"}
    assert stack.devops_tokens() - tokens == 1
    assert stack.entra_requests() - requests == 2
    assert stack.credential_calls("GET", "200") - lists == 1
    assert stack.credential_calls("PATCH") - patches == 1
    assert stack.credential_calls("POST") - posts == 0
    assert only_credential(stack)["token_valid"] is True


async def test_without_the_setting_nothing_touches_git_credentials(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """An Azure namespace without ``git_credentials: entra`` gets no Git credential call and
    no Azure DevOps token; its Azure DevOps run fails at checkout, as Databricks fails it
    without the principal's Git credential."""
    stack = await azure_stack_factory(tenants={NS: {"identity": azure.azure_identity()}})
    final = await stack.finish(NS, await stack.submit(NS, ado_spec("no-setting")))
    assert final["state"] == "FAILED", final
    assert str(final["state_message"]).startswith("REPOSITORY_CHECKOUT_FAILED"), final
    assert stack.credential_calls() == 0
    assert stack.devops_tokens() == 0
    assert stack.emulator.git_credentials() == []


async def test_a_workload_identity_namespace_gets_its_credential_too(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Azure workload identity (the federated token file as the client's proof) asks Entra
    for the Azure DevOps token the same way: the run succeeds, its principal's credential
    holds that token."""
    policy = {
        "identity": {
            "type": "azure-workload-identity",
            "tenant_id": AZURE_TENANT_ID,
            "client_id": AZURE_WI_CLIENT_ID,
        },
        "git_credentials": "entra",
    }
    stack = await identity_stack_factory(tenants={NS: policy})
    submitted = await stack.client().submit_body(NS, {"spec": ado_spec("wi-ado")})
    assert submitted.status == 201, submitted
    async with asyncio.timeout(15):
        final = await stack.client().wait(NS, submitted.run["id"], poll_interval=0.05)
    assert final["state"] == "SUCCEEDED", final
    (held,) = stack.emulator.git_credentials()
    assert held["principal"] == AZURE_WI_APP
    assert held["token_resource"] == DEVOPS_RESOURCE
    assert held["token_valid"] is True
