"""The Git credential step a tenant check shows: skipped when off, failed with the cause,
ok saying whether the credential exists yet; it writes nothing (issue 17)."""

from __future__ import annotations

import aiohttp

from gateway.appkeys import IDENTITIES
from gateway.databricks.git_credentials import GitCredentialsClient
from gateway.databricks.retries import RetryPolicy
from gateway.gitcreds.check import CheckedIdentity, StepResult, git_credential_step
from tests.gitcreds.stack import (
    NO_DEVOPS_ID,
    NO_DEVOPS_SECRET,
    PAT,
    AzureStack,
    AzureStackFactory,
    ado_spec,
    azure_identity,
)

ON, OFF, PAT_NS, DENIED = "team-on", "team-off", "team-pat", "team-denied"
TENANTS = {
    ON: {"identity": azure_identity(), "git_credentials": "entra"},
    OFF: {"identity": azure_identity()},
    PAT_NS: {"identity": {"type": "pat", "token": PAT}, "git_credentials": "entra"},
    DENIED: {
        "identity": azure_identity(NO_DEVOPS_ID, NO_DEVOPS_SECRET),
        "git_credentials": "entra",
    },
}


async def step(stack: AzureStack, namespace: str) -> StepResult:
    identity = await stack.app[IDENTITIES].resolve(namespace)
    client = GitCredentialsClient(
        stack.session, retry=RetryPolicy(deadline=1.0), timeout=aiohttp.ClientTimeout(total=5)
    )
    checked = CheckedIdentity.of(identity)
    return await git_credential_step(namespace, stack.settings.tenants, checked, client)


async def test_each_namespace_gets_its_step(azure_stack_factory: AzureStackFactory) -> None:
    """Off: skipped. PAT: failed, not an Azure principal. No access: failed, quoting Entra.
    Enabled: ok, no credential yet, then, after a run, the credential's id."""
    stack = await azure_stack_factory(tenants=TENANTS)
    assert (await step(stack, OFF)).status == "skipped"
    pat = await step(stack, PAT_NS)
    assert pat.status == "failed"
    assert "needs an Azure service principal" in pat.detail
    assert pat.object == f"the identity of '{PAT_NS}' (tenant policy)"
    assert pat.fix is not None
    assert "git_credentials: off" in pat.fix
    denied = await step(stack, DENIED)
    assert denied.status == "failed"
    assert "AADSTS501051" in denied.detail
    assert not denied.transient
    assert denied.object is not None
    assert "Azure DevOps" in denied.object
    assert denied.fix is not None
    assert "access to Azure DevOps" in denied.fix
    fresh = await step(stack, ON)
    assert fresh.status == "ok"
    assert "no azureDevOpsServices credential yet" in fresh.detail
    assert fresh.credential_id is None
    assert stack.credential_calls("POST") == stack.credential_calls("PATCH") == 0

    await stack.finish(ON, await stack.submit(ON, ado_spec("first")))
    (held,) = stack.emulator.git_credentials()
    after = await step(stack, ON)
    assert after.status == "ok"
    assert f"credential {held['credential_id']} gets a new token" in after.detail
    assert after.credential_id == held["credential_id"]
