"""The first slice end to end: REST call, ledger, Databricks emulator, poller, terminal state."""

from __future__ import annotations

import asyncio

from tests.e2e.specs import spec
from tests.fixtures.gateway import StackFactory, namespace_name


async def test_run_reaches_succeeded_as_its_namespace_principal(
    gateway_stack_factory: StackFactory,
) -> None:
    """A submitted run is created once, by its namespace's principal, and ends SUCCEEDED."""
    stack = await gateway_stack_factory(namespaces=2)
    for index in range(2):
        ns = namespace_name(index)
        client = stack.client()
        submitted = await client.submit(ns, spec(f"smoke-{ns}"))
        assert submitted.status == 201
        async with asyncio.timeout(15):
            final = await client.wait(ns, submitted.run["id"], poll_interval=0.1)
        assert final["state"] == "SUCCEEDED"
        remote = [r for r in stack.emulator.runs() if r["run_name"] == f"smoke-{ns}"]
        assert len(remote) == 1
        assert remote[0]["principal"] == stack.principal(ns)
        assert final["databricks_run_id"] == remote[0]["run_id"]
