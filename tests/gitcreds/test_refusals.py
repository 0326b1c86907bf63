"""What cannot keep a Git credential is refused with its cause before the run reaches
Databricks (422), and what may heal waits and is submitted once it has (issue 17)."""

from __future__ import annotations

import asyncio

import pytest

from tests.gitcreds.stack import (
    APP_ID,
    NO_DEVOPS_ID,
    NO_DEVOPS_SECRET,
    PAT,
    AzureStackFactory,
    ado_spec,
    azure_identity,
)

NS = "team-ado"
CREDENTIALS = "/api/2.0/git-credentials"


async def test_a_namespace_that_is_not_azure_is_refused_422(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """A PAT namespace with git_credentials: entra gets 422 naming the namespace, the cause
    (not an Azure service principal) and the fix; Git credentials are not touched."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": {"type": "pat", "token": PAT}, "git_credentials": "entra"}}
    )
    error = await stack.refused(NS, ado_spec("pat-ado"))
    assert error.status == 422
    assert error.problem["namespace"] == NS
    run = await stack.client().get(NS, error.problem["run_id"])
    assert run["state"] == "REJECTED"
    assert f"namespace '{NS}'" in error.detail
    assert "needs an Azure service principal" in error.detail
    assert "pat identity" in error.detail
    assert "git_credentials: off" in error.detail
    assert stack.credential_calls() == 0


async def test_a_pat_namespace_runs_what_needs_no_azure_devops(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """The setting acts only on runs with an Azure DevOps git_source: the same PAT namespace's
    other runs are submitted as ever."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": {"type": "pat", "token": PAT}, "git_credentials": "entra"}}
    )
    spec = ado_spec("github-run")
    spec["git_source"]["git_provider"] = "gitHub"
    final = await stack.finish(NS, await stack.submit(NS, spec))
    assert final["state"] == "SUCCEEDED", final
    assert stack.credential_calls() == 0


async def test_a_principal_without_access_to_azure_devops_is_refused_422(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """Entra refusing the Azure DevOps token (the app is not assigned to it) is a 422 that
    quotes Entra and says what to grant; nothing is written and no run is created."""
    identity = azure_identity(NO_DEVOPS_ID, NO_DEVOPS_SECRET)
    stack = await azure_stack_factory(
        tenants={NS: {"identity": identity, "git_credentials": "entra"}}
    )
    error = await stack.refused(NS, ado_spec("no-access"))
    assert error.status == 422
    assert "Entra ID gave no token for Azure DevOps" in error.detail
    assert "AADSTS501051" in error.detail
    assert "grant the service principal access to Azure DevOps" in error.detail
    assert stack.credential_calls() == 0


async def test_the_git_credentials_api_refusing_is_422_with_its_message(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """A 403 PERMISSION_DENIED from the Git Credentials API refuses the run (422) quoting
    Databricks, before any run is created."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": azure_identity(), "git_credentials": "entra"}}
    )
    stack.emulator.fault(
        path=CREDENTIALS,
        status=403,
        error_code="PERMISSION_DENIED",
        message="Service principal cannot use Git credentials",
    )
    error = await stack.refused(NS, ado_spec("api-refuses"))
    assert error.status == 422
    assert "Git Credentials API refused" in error.detail
    assert "Service principal cannot use Git credentials" in error.detail


@pytest.mark.parametrize("status", [503, 429])
async def test_an_outage_of_the_git_credentials_api_waits_then_submits(
    azure_stack_factory: AzureStackFactory, status: int
) -> None:
    """While the Git Credentials API answers 503 (or 429) the run is accepted but not
    submitted (202, SUBMITTING); once it answers again the run is submitted and succeeds."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": azure_identity(), "git_credentials": "entra"}},
        retry_deadline_seconds=0.3,
        inline_submit_seconds=2,
    )
    stack.emulator.fault(path=CREDENTIALS, status=status, retry_after=0, probability=1.0)
    submitted = await stack.client().submit_body(NS, {"spec": ado_spec("outage")})
    assert submitted.status == 202
    assert submitted.run["state"] == "SUBMITTING"
    assert stack.emulator.runs() == []
    await asyncio.sleep(0.5)
    stack.emulator.clear_faults()
    final = await stack.finish(NS, submitted.run)
    assert final["state"] == "SUCCEEDED", final
    assert stack.emulator.git_credentials()[0]["git_username"] == APP_ID


async def test_a_credential_created_meanwhile_is_updated_not_duplicated(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """When the create is answered 'already exists' (another replica created it in between),
    lakegate lists again and updates that credential: the principal keeps exactly one."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": azure_identity(), "git_credentials": "entra"}}
    )
    # The create takes effect, but its answer is the conflict another writer would cause.
    stack.emulator.fault(
        path=CREDENTIALS,
        method="POST",
        status=409,
        error_code="RESOURCE_ALREADY_EXISTS",
        message="A Git credential already exists for provider azureDevOpsServices.",
        after=True,
        count=1,
    )
    final = await stack.finish(NS, await stack.submit(NS, ado_spec("race")))
    assert final["state"] == "SUCCEEDED", final
    assert len(stack.emulator.git_credentials()) == 1
    assert stack.credential_calls("PATCH") == 1


async def test_a_git_credentials_api_that_hangs_defers_the_run(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """A list that does not answer within the inline submission time leaves the run accepted
    (202, SUBMITTING); the next attempt, answered, submits it."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": azure_identity(), "git_credentials": "entra"}},
        inline_submit_seconds=0.5,
    )
    stack.emulator.fault(path=CREDENTIALS, method="GET", action="hang", seconds=2, count=1)
    submitted = await stack.client().submit_body(NS, {"spec": ado_spec("hangs")})
    assert submitted.status == 202
    assert submitted.run["state"] == "SUBMITTING"
    final = await stack.finish(NS, submitted.run)
    assert final["state"] == "SUCCEEDED", final
    assert len(stack.emulator.runs()) == 1
