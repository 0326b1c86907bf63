"""A namespace credential Databricks refuses for good is a 4xx on the facade, never a 5xx.

Databricks answering 401 to every call, even after lakegate fetched a fresh token, is the
namespace's configuration refused (issue 9): runs/get and runs/get-output answer 400
INVALID_STATE naming whose credential, which Databricks clients neither retry for minutes
(as they would a 5xx) nor blame on their own token (as they would a 401 or 403).
"""

from __future__ import annotations

from tests.e2e.specs import spec
from tests.fixtures.gateway import StackFactory


async def test_a_refused_namespace_credential_is_a_400_not_a_500(
    gateway_stack_factory: StackFactory,
) -> None:
    """PAT and OAuth namespaces alike: 400 INVALID_STATE, the message naming the namespace's
    credential; the run's own state is still the ledger's to tell on /v1."""
    stack = await gateway_stack_factory(2)
    for namespace in ("team-00", "team-01"):
        headers = {"X-Lakegate-Namespace": namespace}
        url = stack.url + "/api/2.1/jobs/runs"
        async with stack.session.post(
            url + "/submit", json=spec("refused", seconds=30), headers=headers
        ) as resp:
            run_id = (await resp.json())["run_id"]
        stack.emulator.fault(path="/api/*/jobs/runs/get*", status=401, count=1000)
        for path in (f"/get?run_id={run_id}", f"/get-output?run_id={run_id}"):
            async with stack.session.get(url + path, headers=headers) as resp:
                error = await resp.json()
                assert resp.status == 400, error
                assert error["error_code"] == "INVALID_STATE"
                assert error["message"].startswith("Databricks refused the namespace's credential")
        stack.emulator.clear_faults()
