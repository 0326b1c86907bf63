"""A run is followed and cancelled only as the principal it was created as (issue 9), and
ServiceAccounts are discovered as Flyte discovers them (issue 12).

Counts are the Databricks emulator's: the Jobs API calls each principal authenticated (runs/get,
runs/list, runs/cancel...), and the runs each principal created.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from gateway.appkeys import METRICS
from gateway.settings.reload import TenantsReloader
from gateway.settings.tenants import TenantsSettings
from tests.e2e.test_run_slice import wait_all_terminal
from tests.fixtures.identity_stack import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SP,
    NO_RETRY,
    IdentityStack,
    IdentityStackFactory,
    Principal,
    default_environ,
)

LIFECYCLE = {"pending_seconds": 0.1, "running_seconds": 1.0, "terminating_seconds": 0.1}
POLLER = {"min_interval_seconds": 0.1, "max_interval_seconds": 0.5}
# Resolutions are re-made quickly, so a changed policy counts at the next poll.
IDENTITY = {"resolution_ttl_seconds": 0.1}
NS = "team-p"


def set_policy(stack: IdentityStack, namespaces: dict[str, Any]) -> None:
    """Swap the tenant policy in, as the tenants file's reload does."""
    assert stack.settings is not None
    tenants = TenantsSettings.model_validate(
        {"defaults": stack.settings.tenants.defaults, "namespaces": namespaces}
    )
    fresh = stack.settings.model_copy(update={"tenants": tenants})
    TenantsReloader(stack.settings, lambda: fresh).apply(fresh)


def oauth_policy(sp: Principal, secret: str | None = None) -> dict[str, Any]:
    return {
        "identity": {
            "type": "oauth-m2m",
            "client_id": sp.application_id,
            "client_secret": secret or sp.secret,
        }
    }


def calls_by(stack: IdentityStack, principal: str) -> int:
    """Jobs API calls the emulator authenticated as ``principal``."""
    by: dict[str, int] = stack.identity_stats()["authenticated_requests"]["by_principal"]
    return by.get(principal, 0)


def gone_gauge(stack: IdentityStack) -> float | None:
    assert stack.app is not None
    return stack.app[METRICS].registry.get_sample_value("lakegate_runs_identity_gone")


def masked(client_id: str) -> str:
    return f"{client_id[:4]}...{client_id[-4:]}"


@pytest.mark.e2e
async def test_a_run_is_never_followed_or_cancelled_as_the_principal_its_policy_now_names(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Runs created as the gateway's default identity stay active and unfollowed once the
    namespace's policy names another service principal: that principal makes no Jobs call at
    all (not runs/get, not runs/cancel), the runs say what changed and how to restore it, the
    gauge counts them; with the policy restored both are followed as the default again, the
    cancelled one to CANCELED."""
    stack = await identity_stack_factory(
        default_identity=True,
        identity={"default_for_unconfigured": True, **IDENTITY},
        lifecycle=LIFECYCLE,
        poller=POLLER,
    )
    client = stack.client(retry=NO_RETRY)
    short = await stack.submit(NS, f"{NS}.short", seconds=1.2)
    long = await stack.submit(NS, f"{NS}.long", seconds=60)
    recorded = (await client.get(NS, short["id"]))["principal"]
    assert recorded["kind"] == "oauth-m2m"
    assert recorded["client_id"] == masked(DEFAULT_CLIENT_ID)
    assert DEFAULT_CLIENT_ID not in str(recorded)

    other = stack.add_service_principal()
    assert other.application_id
    assert other.secret
    set_policy(stack, {NS: oauth_policy(other)})
    await asyncio.sleep(0.3)
    await client.cancel(NS, long["id"])
    await asyncio.sleep(2.5)  # the short run has ended at Databricks by now

    assert calls_by(stack, other.name) == 0
    for run in (short, long):
        waiting = await client.get(NS, run["id"])
        assert waiting["state"] in {"PENDING", "RUNNING"}, waiting
        message = waiting["state_message"] or ""
        assert f"created as oauth-m2m client id {masked(DEFAULT_CLIENT_ID)}" in message, message
        assert f"now resolves to oauth-m2m client id {masked(other.application_id)}" in message
        assert "tenant policy" in message
        assert "following resumes" in message
        assert other.secret not in message
        assert other.application_id not in message
    assert (await client.get(NS, long["id"]))["cancel_requested"] is True
    assert gone_gauge(stack) == 2

    # A run created now, as the new principal, is followed as it; polling its group (the same
    # namespace and choice) leaves the older principal's runs alone.
    newer = await stack.submit(NS, f"{NS}.newer", seconds=0.3)
    done = await wait_all_terminal(client, [(NS, newer["id"])], within=15)
    assert done[newer["id"]]["state"] == "SUCCEEDED"
    for run in (short, long):
        assert (await client.get(NS, run["id"]))["state"] in {"PENDING", "RUNNING"}

    before = calls_by(stack, DEFAULT_SP)
    set_policy(stack, {})
    final = await wait_all_terminal(client, [(NS, short["id"]), (NS, long["id"])], within=20)
    assert final[short["id"]]["state"] == "SUCCEEDED"
    assert final[long["id"]]["state"] == "CANCELED"
    assert calls_by(stack, DEFAULT_SP) > before
    created = {r["run_name"]: r["principal"] for r in stack.emulator.runs()}
    assert created == {
        f"{NS}.short": DEFAULT_SP,
        f"{NS}.long": DEFAULT_SP,
        f"{NS}.newer": other.name,
    }
    assert gone_gauge(stack) == 0


@pytest.mark.e2e
async def test_a_run_waits_while_the_gateway_default_identity_is_another_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A gateway restarted with another default identity (another DATABRICKS_CLIENT_ID) does
    not follow the runs the old one created: the new principal makes no Jobs call, the run
    says so; restarted with the old identity, the run is followed to its end."""
    stack = await identity_stack_factory(
        default_identity=True,
        identity={"default_for_unconfigured": True, **IDENTITY},
        lifecycle=LIFECYCLE,
        poller=POLLER,
    )
    run = await stack.submit(NS, f"{NS}.1", seconds=1.2)
    switched = stack.add_service_principal()
    assert switched.application_id
    assert switched.secret
    await stack.restart(
        {
            "DATABRICKS_HOST": stack.emulator.url,
            "DATABRICKS_CLIENT_ID": switched.application_id,
            "DATABRICKS_CLIENT_SECRET": switched.secret,
        }
    )
    client = stack.client(retry=NO_RETRY)
    await asyncio.sleep(2.5)  # the run has ended at Databricks by now

    assert calls_by(stack, switched.name) == 0
    waiting = await client.get(NS, run["id"])
    assert waiting["state"] in {"PENDING", "RUNNING"}, waiting
    message = waiting["state_message"] or ""
    assert f"created as oauth-m2m client id {masked(DEFAULT_CLIENT_ID)}" in message, message
    assert f"now resolves to oauth-m2m client id {masked(switched.application_id)}" in message
    assert "default identity" in message
    assert gone_gauge(stack) == 1

    await stack.restart(default_environ(stack))
    final = await wait_all_terminal(stack.client(retry=NO_RETRY), [(NS, run["id"])], within=15)
    assert final[run["id"]]["state"] == "SUCCEEDED"
    assert calls_by(stack, switched.name) == 0
    assert gone_gauge(stack) == 0


@pytest.mark.e2e
async def test_rotating_the_secret_of_the_same_principal_keeps_following(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A policy whose client secret is rotated (the old one refused, its tokens revoked) is
    the same principal: the run is followed to its end without waiting, as that principal."""
    stack = await identity_stack_factory(identity=IDENTITY, lifecycle=LIFECYCLE, poller=POLLER)
    sp = stack.add_service_principal()
    assert sp.application_id
    assert sp.secret
    set_policy(stack, {NS: oauth_policy(sp)})
    run = await stack.submit(NS, f"{NS}.rotated", seconds=1.5)
    fetched = stack.identity_stats()["tokens_issued"]["by_principal"][sp.name]

    rotated = "dose" + secrets.token_hex(16)
    set_policy(stack, {NS: oauth_policy(sp, rotated)})
    stack.emulator.identity.rotate_secret(sp.application_id, rotated)
    assert stack.emulator.identity.revoke_principal(sp.name) >= 1

    client = stack.client(retry=NO_RETRY)
    final = await wait_all_terminal(client, [(NS, run["id"])], within=15)
    assert final[run["id"]]["state"] == "SUCCEEDED"
    assert "not followed" not in (final[run["id"]]["state_message"] or "")
    # A token was fetched again with the new secret, and every Jobs call was the principal's.
    assert stack.identity_stats()["tokens_issued"]["by_principal"][sp.name] > fetched
    assert set(stack.identity_stats()["authenticated_requests"]["by_principal"]) == {sp.name}
    assert gone_gauge(stack) == 0


@pytest.mark.e2e
async def test_a_secret_edited_to_another_service_principal_leaves_its_runs_waiting(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """The databricks-oauth Secret edited to hold another service principal (not a rotated
    secret of the same one) is another principal: the run created as the first waits, the
    second makes no call for it (and is not handed the first's cached token); new runs are
    created as the second; with the Secret restored the run is followed to its end."""
    stack = await identity_stack_factory(identity=IDENTITY, lifecycle=LIFECYCLE, poller=POLLER)
    first = stack.oauth_secret(NS)
    assert first.application_id
    run = await stack.submit(NS, f"{NS}.first", seconds=1.2)
    second = stack.add_service_principal()
    assert second.application_id
    assert second.secret
    stack.kube.put_secret(
        NS, "databricks-oauth", {"client_id": second.application_id, "client_secret": second.secret}
    )
    await asyncio.sleep(2.5)  # the run has ended at Databricks by now

    client = stack.client(retry=NO_RETRY)
    assert calls_by(stack, second.name) == 0
    waiting = await client.get(NS, run["id"])
    assert waiting["state"] in {"PENDING", "RUNNING"}, waiting
    message = waiting["state_message"] or ""
    assert f"client id {masked(first.application_id)}" in message, message
    now = f"oauth-m2m Secret 'databricks-oauth' client id {masked(second.application_id)}"
    assert f"now resolves to {now}" in message
    assert gone_gauge(stack) == 1
    assert await stack.run_to_end(NS, f"{NS}.second") == second.name

    assert first.secret
    stack.kube.put_secret(
        NS, "databricks-oauth", {"client_id": first.application_id, "client_secret": first.secret}
    )
    final = await wait_all_terminal(client, [(NS, run["id"])], within=15)
    assert final[run["id"]]["state"] == "SUCCEEDED"
    created = {r["run_name"]: r["principal"] for r in stack.emulator.runs()}
    assert created == {f"{NS}.first": first.name, f"{NS}.second": second.name}
    assert gone_gauge(stack) == 0


@pytest.mark.e2e
async def test_a_labelled_account_without_a_client_id_gives_way_to_the_namespace_secret(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """As in Flyte: a labelled ServiceAccount with a blank client-id annotation is no identity,
    so the namespace's databricks-token Secret is used; without the Secret the refusal (422)
    names the account and the missing annotation, and no token is minted or exchanged."""
    stack = await identity_stack_factory()
    stack.labelled_service_account("team-bare", "etl", client_id=False)
    await stack.synced()
    refused = await stack.refused("team-bare")
    assert refused.status == 422
    assert "ServiceAccount 'etl'" in (refused.detail or "")
    assert "lakegate.io/databricks-client-id" in (refused.detail or "")
    assert stack.kube.token_requests("team-bare", "etl") == 0
    assert stack.token_exchanges() == 0

    user = stack.pat_secret("team-bare")
    assert await stack.run_to_end("team-bare", "team-bare.1") == user.name


@pytest.mark.e2e
async def test_a_flyte_namespace_runs_unchanged_and_its_runs_say_as_whom(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A ServiceAccount labelled and annotated as Flyte's connector documents, without an
    audience annotation, federates with a policy trusting audience ``databricks``; the run
    records the ServiceAccount and the masked client id it ran as."""
    stack = await identity_stack_factory()
    sp = stack.labelled_service_account("team-flyte", "flyte-sa", flavour="flyte", audience=None)
    assert sp.application_id
    await stack.synced()
    assert await stack.run_to_end("team-flyte", "team-flyte.1") == sp.name
    runs = await stack.client().list_runs("team-flyte")
    principal = runs.runs[0]["principal"]
    assert principal["service_account"] == "flyte-sa"
    assert principal["client_id"] == masked(sp.application_id)
    assert principal["kind"] == "service-account-federation"
