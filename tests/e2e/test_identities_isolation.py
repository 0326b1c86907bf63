"""No namespace runs as another's identity (issue 4): concurrent tenants stay apart, and every
failure to resolve a namespace's own identity refuses it rather than falling through to one
that happens to work, with nothing sent to Databricks for it.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from gateway.cli.errors import ApiError
from tests.e2e.specs import spec
from tests.e2e.test_run_slice import wait_all_terminal
from tests.fixtures.identity_stack import DEFAULT_SP, NO_RETRY, IdentityStackFactory, Principal

RUNS_EACH = 4


@pytest.mark.e2e
async def test_fifty_concurrent_namespaces_each_run_as_their_own_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """50 namespaces of four identity kinds submit at once; each run is its namespace's own,
    and a namespace whose Secret RBAC forbids is refused (403), not served by the default."""
    # The gateway has a default identity and lends it to unconfigured namespaces, so a
    # resolution that failed open would show up as runs of DEFAULT_SP.
    stack = await identity_stack_factory(
        default_identity=True, identity={"default_for_unconfigured": True}
    )
    owners: dict[str, Principal] = {}
    for index in range(50):
        ns = f"tenant-{index:02d}"
        kind = index % 4
        if kind == 0:
            owners[ns] = stack.pat_secret(ns)
        elif kind == 1:
            owners[ns] = stack.oauth_secret(ns)
        else:
            owners[ns] = stack.labelled_service_account(
                ns, "runner", flavour="lakegate" if kind == 2 else "flyte"
            )
    denied = "tenant-denied"
    stack.pat_secret(denied)
    stack.kube.deny("get", "secrets", namespace=denied)
    await stack.synced()

    client = stack.client(retry=NO_RETRY)

    async def submit(ns: str, i: int) -> tuple[str, int] | ApiError:
        try:
            submitted = await client.submit(ns, spec(f"{ns}.{i}", seconds=0.2))
        except ApiError as exc:
            return exc
        assert submitted.status == 201, submitted
        return ns, int(submitted.run["id"])

    plan = [(ns, i) for i in range(RUNS_EACH) for ns in [*owners, denied]]
    results = await asyncio.gather(*(submit(ns, i) for ns, i in plan))

    refusals = [r for r in results if isinstance(r, ApiError)]
    assert len(refusals) == RUNS_EACH
    for refusal in refusals:
        assert refusal.status == 403
        assert refusal.problem["namespace"] == denied
        assert "Secret 'databricks-oauth'" in (refusal.detail or "")
    accepted = [r for r in results if not isinstance(r, ApiError)]
    final = await wait_all_terminal(client, accepted, within=60)
    assert Counter(run["state"] for run in final.values()) == {"SUCCEEDED": 50 * RUNS_EACH}

    remote = stack.emulator.runs()
    assert len(remote) == 50 * RUNS_EACH
    for run in remote:
        ns = run["run_name"].split(".")[0]
        assert run["principal"] == owners[ns].name, run
    assert not [r for r in remote if r["principal"] == DEFAULT_SP]


async def test_workspace_off_the_allow_list_is_refused_before_any_token_is_minted(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A ServiceAccount annotated with an unlisted workspace gets 403 and mints no token."""
    stack = await identity_stack_factory()
    stack.labelled_service_account("team-evil", "runner", workspace="https://harvest.example.com")
    # The same annotation naming a listed workspace (by host) is honoured.
    good = stack.labelled_service_account("team-good", "runner", workspace=stack.emulator.url)
    await stack.synced()

    error = await stack.refused("team-evil")
    assert error.status == 403
    assert error.problem["namespace"] == "team-evil"
    assert "harvest.example.com" in (error.detail or "")
    assert "allow-list" in (error.detail or "")
    assert stack.kube.token_requests("team-evil", "runner") == 0
    assert stack.token_exchanges() == 0

    assert await stack.run_to_end("team-good", "listed-host") == good.name


async def test_two_labelled_service_accounts_need_the_request_to_choose(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Two labelled ServiceAccounts refuse an unqualified request, naming both and the fix."""
    stack = await identity_stack_factory()
    stack.labelled_service_account("team-two", "etl")
    reports = stack.labelled_service_account("team-two", "reports")
    await stack.synced()

    error = await stack.refused("team-two")
    assert error.status == 422
    assert error.problem["namespace"] == "team-two"
    detail = error.detail or ""
    assert "etl, reports" in detail
    assert "identity.service_account" in detail
    assert stack.token_exchanges() == 0

    chosen = {"service_account": "reports"}
    assert await stack.run_to_end("team-two", "chosen", identity=chosen) == reports.name


async def test_unconfigured_namespace_is_refused_with_how_to_configure_it(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A namespace with no identity gets 403 saying which label or Secret would give it one."""
    stack = await identity_stack_factory()
    stack.kube.create_service_account("team-none", "default")  # present but not labelled
    error = await stack.refused("team-none")
    assert error.status == 403
    assert error.problem["namespace"] == "team-none"
    detail = error.detail or ""
    assert "lakegate.io/databricks-enabled=true" in detail
    assert "databricks-oauth" in detail
    assert "databricks-token" in detail
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_a_request_cannot_borrow_what_its_namespace_does_not_offer(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Naming an unlabelled ServiceAccount, or a Secret only another namespace holds, is
    refused; the namespace's own identity is not used instead."""
    stack = await identity_stack_factory()
    stack.pat_secret("team-a")
    stack.kube.create_service_account("team-a", "builder")  # exists, not labelled
    stack.oauth_secret("team-b", secret="shared-oauth")

    unlabelled = await stack.refused("team-a", identity={"service_account": "builder"})
    assert unlabelled.status == 422
    assert "'builder'" in (unlabelled.detail or "")
    assert "not labelled" in (unlabelled.detail or "")

    foreign = await stack.refused("team-a", identity={"secret": "shared-oauth"})
    assert foreign.status == 422
    assert foreign.problem["namespace"] == "team-a"
    assert "'shared-oauth' does not exist in namespace 'team-a'" in (foreign.detail or "")
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_a_refusal_is_not_remembered(identity_stack_factory: IdentityStackFactory) -> None:
    """A namespace refused for an unreadable or missing Secret is served as soon as the
    Secret can be read, without a restart."""
    stack = await identity_stack_factory(identity={"resolution_ttl_seconds": 300})
    user = stack.pat_secret("team-late")
    rule = stack.kube.deny("get", "secrets", namespace="team-late")
    assert (await stack.refused("team-late")).status == 403
    stack.kube.allow(rule)
    assert await stack.run_to_end("team-late", "after-rbac-fix") == user.name

    assert (await stack.refused("team-later")).status == 403
    later = stack.oauth_secret("team-later")
    assert await stack.run_to_end("team-later", "after-secret-created") == later.name
