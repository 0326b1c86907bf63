"""One tenant's failure stays its own (issue 9): 20 namespaces submit and are polled while one
holds a poisoned Secret; the other 19 keep their poll lag, the poisoned one's runs say why
they wait, and following resumes once the Secret is repaired."""

from __future__ import annotations

import asyncio
import statistics
from datetime import datetime
from typing import Any

import pytest

from gateway.appkeys import METRICS
from gateway.cli.errors import ApiError
from tests.e2e.specs import spec
from tests.e2e.test_run_slice import wait_all_terminal
from tests.fixtures.identity_stack import (
    NO_RETRY,
    IdentityStack,
    IdentityStackFactory,
    Principal,
)

NAMESPACES = 20
RUNS_EACH = 3
LIFECYCLE = {"pending_seconds": 0.2, "running_seconds": 1.5, "terminating_seconds": 0.1}
RUN_SECONDS = sum(LIFECYCLE.values())
POLLER = {"min_interval_seconds": 0.1, "max_interval_seconds": 0.5}
POISONED = "tenant-00"
# Far beyond a few poll intervals (0.5 s at most), even on a loaded machine.
STALLED_SECONDS = 10.0
# The poisoned namespace's runs outlast the healthy ones' measurement.
LONG_RUN = 8.0


def lags(stack: IdentityStack, final: dict[int, dict[str, Any]]) -> list[float]:
    """Seconds from each run's end at Databricks to the ledger recording it."""
    ended = {r["run_id"]: r["created_ms"] / 1000 + RUN_SECONDS for r in stack.emulator.runs()}
    return [
        datetime.fromisoformat(run["updated_at"]).timestamp() - ended[run["databricks_run_id"]]
        for run in final.values()
    ]


async def submit_all(stack: IdentityStack, namespaces: list[str]) -> list[tuple[str, int]]:
    submitted = await asyncio.gather(
        *(
            stack.submit(ns, f"{ns}.{i}", seconds=RUN_SECONDS)
            for ns in namespaces
            for i in range(RUNS_EACH)
        )
    )
    return [(run["namespace"], int(run["id"])) for run in submitted]


@pytest.mark.e2e
async def test_a_poisoned_secret_holds_up_only_its_own_namespace(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """With one namespace's Secret given a line break under its running runs, the 19 others'
    runs are followed to their end with the poll lag they have alone; the poisoned
    namespace's new submissions are refused (422) and its runs wait saying which Secret and
    key is wrong (never its value), and are followed to their end once it is repaired."""
    stack = await identity_stack_factory(lifecycle=LIFECYCLE, poller=POLLER)
    owners: dict[str, Principal] = {
        f"tenant-{i:02d}": stack.pat_secret(f"tenant-{i:02d}") for i in range(NAMESPACES)
    }
    healthy = [ns for ns in owners if ns != POISONED]
    client = stack.client(retry=NO_RETRY)

    baseline = await wait_all_terminal(client, await submit_all(stack, healthy), within=30)
    alone = lags(stack, baseline)

    good = owners[POISONED].secret
    assert good is not None
    in_flight = [
        await stack.submit(POISONED, f"{POISONED}.{i}", seconds=LONG_RUN) for i in range(RUNS_EACH)
    ]
    stack.kube.put_secret(POISONED, "databricks-token", {"token": f"{good}\nX-Evil: 1"})
    with pytest.raises(ApiError) as refused:
        await client.submit_body(POISONED, {"spec": spec(f"{POISONED}.late", seconds=0.2)})
    # A malformed Secret is the namespace's misconfiguration: refused for good, not retried.
    assert refused.value.status == 422
    assert "'databricks-token'" in (refused.value.detail or "")
    assert good not in str(refused.value.problem)
    healthy_runs = await submit_all(stack, healthy)
    final = await wait_all_terminal(client, healthy_runs, within=30)
    beside = lags(stack, final)
    assert {run["state"] for run in final.values()} == {"SUCCEEDED"}

    for submitted in in_flight:
        run = await client.get(POISONED, submitted["id"])
        assert run["state"] in {"PENDING", "RUNNING"}, run
        message = run["state_message"] or ""
        assert "'databricks-token'" in message, message
        assert "'token'" in message, message
        assert good not in message

    print(  # the figures the issue asks for, shown with -s
        f"\npoll lag alone: median {statistics.median(alone):.3f} s, max {max(alone):.3f} s;"
        f" beside a poisoned Secret: median {statistics.median(beside):.3f} s,"
        f" max {max(beside):.3f} s ({len(beside)} runs)"
    )
    # Not a benchmark (the figures above are): a stalled poller would leave runs unfollowed
    # for the whole wait; followed ones are seen within a few poll intervals.
    assert max(beside) < STALLED_SECONDS

    stack.kube.put_secret(POISONED, "databricks-token", {"token": good})
    healed = await wait_all_terminal(
        client, [(POISONED, int(run["id"])) for run in in_flight], within=30
    )
    assert {run["state"] for run in healed.values()} == {"SUCCEEDED"}


@pytest.mark.e2e
async def test_a_run_whose_secret_is_deleted_is_followed_by_no_other_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """With the default identity lent to unconfigured namespaces, deleting a tenant's Secret
    leaves its run active and unfollowed (not followed with the gateway's own token), saying
    what to restore; restoring the Secret lets the run be followed to its end."""
    stack = await identity_stack_factory(
        default_identity=True,
        identity={"default_for_unconfigured": True},
        lifecycle={"pending_seconds": 0.1, "running_seconds": 1.0, "terminating_seconds": 0.1},
        poller=POLLER,
    )
    owner = stack.pat_secret("tenant-gone")
    assert owner.secret is not None
    run = await stack.submit("tenant-gone", "tenant-gone.1", seconds=1.2)
    assert stack.kube.delete_secret("tenant-gone", "databricks-token")
    client = stack.client(retry=NO_RETRY)
    await asyncio.sleep(2.5)  # the run has ended at Databricks by now

    waiting = await client.get("tenant-gone", run["id"])
    assert waiting["state"] in {"PENDING", "RUNNING"}, waiting
    message = waiting["state_message"] or ""
    assert "Secret 'databricks-token'" in message, message
    assert "gone" in message
    assert "recreate" in message
    assert stack.app is not None
    metrics = stack.app[METRICS].registry
    assert metrics.get_sample_value("lakegate_runs_identity_gone") == 1

    stack.kube.put_secret("tenant-gone", "databricks-token", {"token": owner.secret})
    final = await wait_all_terminal(client, [("tenant-gone", int(run["id"]))], within=15)
    assert [r["state"] for r in final.values()] == ["SUCCEEDED"]
    assert metrics.get_sample_value("lakegate_runs_identity_gone") == 0


@pytest.mark.e2e
async def test_a_request_may_not_name_a_secret_the_namespace_did_not_offer(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A credential-shaped Secret of the namespace without lakegate.io/databricks-enabled=true
    (a CI token, say) is refused when a request names it: 400 naming it, no token fetched."""
    stack = await identity_stack_factory()
    stack.pat_secret("team-ci")
    stack.oauth_secret("team-ci", secret="ci-deploy-oauth")
    error = await stack.refused("team-ci", identity={"secret": "ci-deploy-oauth"})
    assert error.status == 400
    assert "ci-deploy-oauth" in (error.detail or "")
    assert "lakegate.io/databricks-enabled=true" in (error.detail or "")
    assert error.problem.get("field") == "identity.secret"
    by_grant = stack.identity_stats()["token_requests"]["by_grant_type"]
    assert by_grant.get("client_credentials", 0) == 0
