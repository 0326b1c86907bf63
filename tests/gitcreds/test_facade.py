"""The Databricks-compatible facade takes the same path: a client that submits an Azure DevOps
run with the Databricks API (an SDK, Airflow) gets the Git credential kept too (issue 17)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gitcreds.stack import (
    DEVOPS_RESOURCE,
    PAT,
    AzureStack,
    AzureStackFactory,
    ado_spec,
    azure_identity,
)

NS, PAT_NS = "team-ado", "team-pat"
TENANTS = {
    NS: {"identity": azure_identity(), "git_credentials": "entra"},
    PAT_NS: {"identity": {"type": "pat", "token": PAT}, "git_credentials": "entra"},
}


async def facade(
    stack: AzureStack, namespace: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": "Bearer any-caller", "X-Lakegate-Namespace": namespace}
    async with stack.session.request(
        method, f"{stack.url}/api/2.1/jobs/{path}", json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_a_submit_through_the_facade_gets_the_credential(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """runs/submit with an Azure DevOps git_source: the run succeeds, the principal's
    credential holds an Entra token for Azure DevOps."""
    stack = await azure_stack_factory(tenants=TENANTS)
    status, body = await facade(stack, NS, "POST", "runs/submit", ado_spec("facade-ado"))
    assert status == 200, body
    run_id = body["run_id"]
    async with asyncio.timeout(15):
        while True:
            _, run = await facade(stack, NS, "GET", f"runs/get?run_id={run_id}")
            if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                break
            await asyncio.sleep(0.05)
    assert run["state"]["result_state"] == "SUCCESS", run
    (held,) = stack.emulator.git_credentials()
    assert held["token_resource"] == DEVOPS_RESOURCE


async def test_a_refusal_through_the_facade_is_worded_as_databricks_words_it(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """The PAT namespace's refusal comes back as a Databricks error with the cause."""
    stack = await azure_stack_factory(tenants=TENANTS)
    status, body = await facade(stack, PAT_NS, "POST", "runs/submit", ado_spec("facade-pat"))
    assert 400 <= status < 500, body
    assert "needs an Azure service principal" in body["message"]
    assert stack.emulator.runs() == []
