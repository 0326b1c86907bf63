"""Jobs calls of an Entra service principal carry the Azure management token and the
workspace's resource id when that id is configured (reference §5), and no other identity's do:
end to end through the API, each Jobs call's headers recorded by the Databricks emulator
(presence of the management token, never its value; the resource id as sent)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_identities_sdk import RESOURCE_ID, SECRET_POLICY, WORKLOAD_POLICY
from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_WI_APP,
    IdentityStack,
    IdentityStackFactory,
)

pytestmark = pytest.mark.e2e


def jobs_calls(stack: IdentityStack) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = stack.emulator.stats()["azure_headers"]["calls"]
    return [c for c in calls if "/jobs/" in c["path"]]


@pytest.mark.parametrize(
    ("policy", "app"),
    [(SECRET_POLICY, AZURE_SECRET_APP), (WORKLOAD_POLICY, AZURE_WI_APP)],
    ids=["client-secret", "workload-identity"],
)
async def test_with_a_resource_id_every_jobs_call_carries_both_headers(
    identity_stack_factory: IdentityStackFactory, policy: dict[str, str], app: str
) -> None:
    """Submit, polls and all: each call has the management token and the resource id."""
    stack = await identity_stack_factory(
        tenants={"team-az": {"identity": policy}},
        workspace=lambda url: {"azure_resource_id": RESOURCE_ID},
    )
    assert await stack.run_to_end("team-az", "azure-headers") == app
    calls = jobs_calls(stack)
    assert any(c["path"].endswith("/runs/submit") for c in calls)
    assert all(c["management_token"] for c in calls), calls
    assert {c["resource_id"] for c in calls} == {RESOURCE_ID}
    assert {c["principal"] for c in calls} == {app}


async def test_without_a_resource_id_an_entra_principal_sends_neither(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    stack = await identity_stack_factory(tenants={"team-az": {"identity": SECRET_POLICY}})
    assert await stack.run_to_end("team-az", "azure-no-rid") == AZURE_SECRET_APP
    calls = jobs_calls(stack)
    assert calls
    assert not any(c["management_token"] or c["resource_id"] for c in calls), calls
    assert stack.emulator.entra.stats()["tokens_issued"]["by_resource"] == {"databricks": 1}


async def test_an_identity_that_is_not_entra_sends_neither_even_with_a_resource_id(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    stack = await identity_stack_factory(workspace=lambda url: {"azure_resource_id": RESOURCE_ID})
    user = stack.pat_secret("team-pat")
    assert await stack.run_to_end("team-pat", "pat-with-rid") == user.name
    calls = jobs_calls(stack)
    assert calls
    assert not any(c["management_token"] or c["resource_id"] for c in calls), calls


async def test_the_emulator_serves_back_no_management_token(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """What the emulator records of the header is its presence (a bool): no token value."""
    stack = await identity_stack_factory(
        tenants={"team-az": {"identity": SECRET_POLICY}},
        workspace=lambda url: {"azure_resource_id": RESOURCE_ID},
    )
    await stack.run_to_end("team-az", "azure-stats")
    recorded = stack.emulator.stats()["azure_headers"]
    assert set(recorded) == {"total", "with_management_token", "by_resource_id", "calls"}
    for call in recorded["calls"]:
        assert set(call) == {"method", "path", "principal", "management_token", "resource_id"}
        assert call["management_token"] is True
    assert recorded["with_management_token"] == recorded["total"] > 0
    assert AZURE_SECRET not in str(recorded)
