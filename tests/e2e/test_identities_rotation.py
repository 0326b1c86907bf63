"""Rotation and revocation without a restart (issue 4, DESIGN.md "Token cache").

While runs of a namespace are in flight (being polled) and more are being submitted, its
credential changes under the gateway: a Secret rotated in Kubernetes, the principal's tokens
revoked in Databricks, the projected token file replaced. Every run must still succeed, and
no call may fail more than once: a refused token costs that call one attempt, after which the
call is retried once with a token fetched afresh (one fetch, however many calls were refused).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.e2e.test_run_slice import wait_all_terminal
from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_SECRET_CLIENT_ID,
    AZURE_TENANT_ID,
    GATEWAY_NAMESPACE,
    GATEWAY_SA,
    POD_AUDIENCE,
    POD_CLIENT_ID,
    POD_SP,
    IdentityStack,
    IdentityStackFactory,
    Principal,
)

NS = "team-rot"
# Long enough that the first runs are still being polled when the credential changes.
IN_FLIGHT_SECONDS = 1.5
AFTER = 6
SLOW_LIFECYCLE = {"pending_seconds": 0.2, "running_seconds": 1.5, "terminating_seconds": 0.1}


def rotate_pat(stack: IdentityStack, owner: Principal) -> None:
    # The operator's order: issue the new PAT, store it, then revoke the old one.
    _, new_pat = stack.add_user(owner.name)
    stack.kube.put_secret(NS, "databricks-token", {"token": new_pat})
    assert owner.secret is not None
    assert stack.emulator.identity.revoke_token(owner.secret)


def rotate_oauth_secret(stack: IdentityStack, owner: Principal) -> None:
    assert owner.application_id is not None
    new_secret = "dose" + "9" * 32
    stack.emulator.identity.rotate_secret(owner.application_id, new_secret)
    stack.kube.put_secret(
        NS, "databricks-oauth", {"client_id": owner.application_id, "client_secret": new_secret}
    )
    # Tokens issued with the old secret live on after a rotation; revoke them too.
    assert stack.emulator.identity.revoke_principal(owner.name) >= 1


def revoke_tokens(stack: IdentityStack, owner: Principal) -> None:
    assert stack.emulator.identity.revoke_principal(owner.name) >= 1


def pod_identity(stack: IdentityStack) -> Principal:
    # A token that lives the API server's minimum, so moving the clock can expire it.
    stack.pod_token_file.write_text(mint_pod_token(stack, 600))
    return Principal(POD_SP, POD_CLIENT_ID)


def replace_token_file(stack: IdentityStack, owner: Principal) -> None:
    # The kubelet writes a fresh token; then the old one (and the Databricks token it bought,
    # which lives no longer than it) expires. Only a gateway that re-reads the file recovers.
    stack.pod_token_file.write_text(mint_pod_token(stack, 4 * 3600))
    stack.emulator.advance(700)


def mint_pod_token(stack: IdentityStack, seconds: int) -> str:
    return stack.kube.mint_token(GATEWAY_NAMESPACE, GATEWAY_SA, [POD_AUDIENCE], seconds)


def token_requests(stack: IdentityStack) -> int:
    """Calls to the workspace token endpoint and to Entra ID's."""
    stats = stack.identity_stats()
    return int(stats["token_requests"]["total"] + stats["entra"]["token_requests"]["total"])


@dataclass(frozen=True)
class Scenario:
    setup: Callable[[IdentityStack], Principal]
    change: Callable[[IdentityStack, Principal], None]
    # Token endpoint calls in all: the first fetch, plus exactly one after the change.
    token_requests: int
    tenants: dict[str, Any] | None = None


SCENARIOS = {
    "pat-secret-rotated": Scenario(lambda s: s.pat_secret(NS), rotate_pat, token_requests=0),
    "oauth-secret-rotated": Scenario(
        lambda s: s.oauth_secret(NS), rotate_oauth_secret, token_requests=2
    ),
    "oauth-tokens-revoked": Scenario(lambda s: s.oauth_secret(NS), revoke_tokens, 2),
    "federated-tokens-revoked": Scenario(
        lambda s: s.labelled_service_account(NS, "runner"), revoke_tokens, 2
    ),
    "azure-tokens-revoked": Scenario(
        lambda s: Principal(AZURE_SECRET_APP, AZURE_SECRET_CLIENT_ID),
        revoke_tokens,
        token_requests=2,
        tenants={
            NS: {
                "identity": {
                    "type": "azure-client-secret",
                    "tenant_id": AZURE_TENANT_ID,
                    "client_id": AZURE_SECRET_CLIENT_ID,
                    "client_secret": AZURE_SECRET,
                }
            }
        },
    ),
    "token-file-replaced": Scenario(
        pod_identity,
        replace_token_file,
        token_requests=2,
        tenants={NS: {"identity": {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}}},
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
async def test_credential_change_fails_no_run_and_no_call_twice(
    identity_stack_factory: IdentityStackFactory, scenario: Scenario
) -> None:
    """Runs submitted and polled across a credential change all succeed, as the same
    principal; each refused call is retried once, after a single refetch."""
    stack = await identity_stack_factory(tenants=scenario.tenants, lifecycle=SLOW_LIFECYCLE)
    owner = scenario.setup(stack)
    await stack.synced()
    client = stack.client()
    with capture_logs() as logs:
        before = [
            await stack.submit(NS, f"before-{i}", seconds=IN_FLIGHT_SECONDS) for i in range(4)
        ]
        runs = [(NS, int(run["id"])) for run in before]
        await asyncio.sleep(0.3)  # the poller is following them now
        scenario.change(stack, owner)
        # At once, so that several calls meet the old token together.
        after = await asyncio.gather(*(stack.submit(NS, f"after-{i}") for i in range(AFTER)))
        runs += [(NS, int(run["id"])) for run in after]
        final = await wait_all_terminal(client, runs, within=30)

    assert Counter(run["state"] for run in final.values()) == {"SUCCEEDED": len(runs)}
    assert {r["principal"] for r in stack.emulator.runs()} == {owner.name}
    refused = stack.auth_failures()
    # The change did bite, but only calls in flight around it met the old token (the
    # concurrent submits and one poll: a list and a get per run); later calls carried the new.
    # A PAT held in a Secret is read at every use, so its rotation need bite no call at all.
    least = 0 if scenario.change is rotate_pat else 1
    assert least <= refused <= AFTER + 1 + len(before)
    events = Counter(entry["event"] for entry in logs)
    assert events["databricks_token_refused"] == refused
    # A call refused twice would have been deferred (submit) or postponed (poll).
    assert events["submit_deferred"] == 0
    assert events["poll_postponed"] == 0
    assert token_requests(stack) == scenario.token_requests

    # Settled: the new credential stays in use.
    assert await stack.run_to_end(NS, "settled") == owner.name
    assert stack.auth_failures() == refused
