"""A short-lived token is reused across submit retries while it has more than a minute left:
the Jobs API answers 503 three times, the submit is retried, and its source (a token file
exchanged at the workspace, or an OIDC token in the gateway's environment) is read once,
counted at the workspace's token endpoint (one exchange per read)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.fixtures.identity_stack import (
    GATEWAY_NAMESPACE,
    GATEWAY_SA,
    POD_AUDIENCE,
    POD_CLIENT_ID,
    POD_SP,
    IdentityStack,
    IdentityStackFactory,
)

pytestmark = pytest.mark.e2e

# Short-lived, yet well beyond the last minute in which no token is sent.
TTL_SECONDS = 150
FAULTS = 3


def env_oidc(stack: IdentityStack) -> dict[str, str]:
    return {
        "DATABRICKS_HOST": stack.emulator.url,
        "DATABRICKS_OIDC_TOKEN": stack.kube.mint_token(
            GATEWAY_NAMESPACE, GATEWAY_SA, [POD_AUDIENCE]
        ),
        "DATABRICKS_CLIENT_ID": POD_CLIENT_ID,
    }


def submit_attempts(stack: IdentityStack) -> int:
    return sum(
        r["count"]
        for r in stack.emulator.stats()["requests"]
        if r["method"] == "POST" and r["path"].endswith("/jobs/runs/submit")
    )


@pytest.mark.parametrize(
    ("policy", "environ_of"),
    [
        ({"type": "pod-token-federation", "client_id": POD_CLIENT_ID}, None),
        ({"type": "default"}, env_oidc),
    ],
    ids=["token-file", "environment-variable"],
)
async def test_submit_retries_reuse_a_short_lived_token(
    identity_stack_factory: IdentityStackFactory,
    policy: Mapping[str, Any],
    environ_of: Callable[[IdentityStack], Mapping[str, str]] | None,
) -> None:
    stack = await identity_stack_factory(
        tenants={"team-short": {"identity": dict(policy)}},
        environ_of=environ_of,
        token_ttl_seconds=TTL_SECONDS,
    )
    stack.emulator.fault(path="/api/*/jobs/runs/submit", status=503, count=FAULTS)
    assert await stack.run_to_end("team-short", "short-lived-retried") == POD_SP
    assert stack.emulator.stats()["faults"]["injected"] == FAULTS
    assert submit_attempts(stack) == FAULTS + 1
    # Read once at the source, exchanged once: every retry and the polls reused it.
    assert stack.token_exchanges() == 1
    issued = stack.identity_stats()["tokens_issued"]["by_principal"]
    assert issued == {POD_SP: 1}
