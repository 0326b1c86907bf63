"""The ServiceAccount informer keeps identities current without a restart (issue 4).

Resolutions are held for 300 s here, far longer than any test: a change can only become
visible because the informer's notification made the resolver forget the namespace, not
because a cached resolution ran out.
"""

from __future__ import annotations

import asyncio
import time

from tests.fixtures.identity_stack import LAKEGATE_LABEL, IdentityStack, IdentityStackFactory

NS = "team-inf"
HOLD = {"resolution_ttl_seconds": 300}
# "Within seconds": how long the informer may take to see and announce a change.
WITHIN = 5.0


async def follows(stack: IdentityStack) -> float:
    """Seconds until the informer holds what the fake API holds (failing after WITHIN)."""
    started = time.monotonic()
    await stack.synced(within=WITHIN)
    return time.monotonic() - started


async def test_label_removed_and_added_back_switch_the_identity(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Unlabelling a ServiceAccount falls back to the Secret; labelling it again returns."""
    stack = await identity_stack_factory(identity=HOLD)
    user = stack.pat_secret(NS)
    sp = stack.labelled_service_account(NS, "etl")
    await stack.synced()
    assert await stack.run_to_end(NS, "labelled") == sp.name

    stack.kube.label_service_account(NS, "etl", {LAKEGATE_LABEL: None})
    await follows(stack)
    assert await stack.run_to_end(NS, "unlabelled") == user.name

    stack.kube.label_service_account(NS, "etl", {LAKEGATE_LABEL: "true"})
    await follows(stack)
    assert await stack.run_to_end(NS, "labelled-again") == sp.name


async def test_deleted_service_account_is_no_longer_used(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Deleting the labelled ServiceAccount makes the namespace fall back to its Secret."""
    stack = await identity_stack_factory(identity=HOLD)
    user = stack.pat_secret(NS)
    sp = stack.labelled_service_account(NS, "etl")
    await stack.synced()
    assert await stack.run_to_end(NS, "before-delete") == sp.name

    assert stack.kube.delete_service_account(NS, "etl")
    await follows(stack)
    assert await stack.run_to_end(NS, "after-delete") == user.name


async def test_watch_ended_by_410_gone_relists_and_sees_later_changes(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """After every watch ends with 410 Gone, the informer lists again and keeps following."""
    stack = await identity_stack_factory(identity=HOLD)
    user = stack.pat_secret(NS)
    await stack.synced()
    assert await stack.run_to_end(NS, "before-410") == user.name
    lists = stack.kube.request_count("list", "serviceaccounts")

    assert stack.kube.expire_watches() >= 1
    # Labelled after the compaction: only a watch resumed from a fresh list can see it.
    sp = stack.labelled_service_account(NS, "etl")
    await follows(stack)
    assert stack.kube.request_count("list", "serviceaccounts") > lists
    assert await stack.run_to_end(NS, "after-410") == sp.name


async def test_run_in_flight_is_followed_as_the_principal_that_submitted_it(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A run submitted as a ServiceAccount's principal is still polled as that principal after
    the namespace's identity changes under it."""
    stack = await identity_stack_factory(identity=HOLD)
    user = stack.pat_secret(NS)
    stack.labelled_service_account(NS, "etl")
    await stack.synced()
    run = await stack.submit(NS, "in-flight", seconds=2.0)

    stack.kube.label_service_account(NS, "etl", {LAKEGATE_LABEL: None})
    await follows(stack)
    async with asyncio.timeout(15):
        final = await stack.client().wait(NS, run["id"], poll_interval=0.1)
    assert final["state"] == "SUCCEEDED"
    # The emulator lets any principal runs/get any run; a real workspace shows a one-time run
    # to its owner (and admins) only, so polls as the Secret's user would be refused there.
    polled_by = stack.identity_stats()["authenticated_requests"]["by_principal"]
    assert user.name not in polled_by
