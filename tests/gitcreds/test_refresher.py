"""The background refresher keeps a principal's Git credential fresh while its runs are
active: a run that waits in Databricks' queue clones, when it starts, with a token that did
not exist when it was submitted (issue 17)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from gateway.app.gitcreds import GIT_CREDENTIAL_REFRESHER
from gateway.appkeys import METRICS
from gateway.gitcreds.refresher import DEFAULT_INTERVAL_SECONDS, GitCredentialRefresher
from tests.gitcreds.stack import AzureStack, AzureStackFactory, ado_spec, azure_identity

NS = "team-ado"
ENABLED = {NS: {"identity": azure_identity(), "git_credentials": "entra"}}
# One run at a time in the workspace: the second waits in Databricks' queue.
ONE_SLOT = {"max_active_runs": 1}
# The first run outlives the first token (3599 s), so the queued one starts after it expired.
LONG = 4000.0


async def queued_behind_a_long_run(stack: AzureStack) -> tuple[int, int]:
    """Submit a long run and a queued one; (lakegate id of the queued run, its remote id)."""
    first = await stack.submit(NS, ado_spec("long", seconds=LONG))
    queued = await stack.submit(NS, ado_spec("queued", queue=True))
    remote = [r for r in stack.emulator.runs() if r["run_name"] == "queued"]
    assert remote[0]["life_cycle_state"] == "QUEUED", remote
    assert first["id"] != queued["id"]
    return queued["id"], remote[0]["run_id"]


def refreshes(stack: AzureStack, outcome: str) -> float:
    value = stack.app[METRICS].registry.get_sample_value(
        "lakegate_git_credential_refreshes_total",
        {"namespace": NS, "trigger": "background", "outcome": outcome},
    )
    return value or 0.0


async def test_a_queued_run_clones_with_the_token_the_refresher_put_in(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """Inside the token's refresh-ahead window the refresher replaces it (counted as a
    background update); the queued run, admitted after the first token expired, succeeds."""
    stack = await azure_stack_factory(tenants=ENABLED, limits=ONE_SLOT)
    run_id, _ = await queued_behind_a_long_run(stack)
    refresher = stack.app[GIT_CREDENTIAL_REFRESHER]
    assert await refresher.tick() == 1
    assert refreshes(stack, "updated") == 0  # still fresh: nothing to do
    stack.emulator.advance(2500)  # 1099 s left: inside the 20-minute window
    assert await refresher.tick() == 1
    assert refreshes(stack, "updated") == 1
    stack.emulator.advance(LONG - 2500 + 10)
    final = await stack.finish(NS, {"id": run_id})
    assert final["state"] == "SUCCEEDED", final


async def test_without_the_refresher_the_queued_run_fails_its_checkout(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """The same queue with no refresh in between: the queued run starts after the token
    expired and fails its checkout, as it would on Databricks."""
    stack = await azure_stack_factory(tenants=ENABLED, limits=ONE_SLOT)
    run_id, _ = await queued_behind_a_long_run(stack)
    stack.emulator.advance(LONG + 10)
    final = await stack.finish(NS, {"id": run_id})
    assert final["state"] == "FAILED", final
    assert str(final["state_message"]).startswith("REPOSITORY_CHECKOUT_FAILED")


async def test_a_failed_background_refresh_is_counted_and_logged_with_the_namespace(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """When the Git Credentials API is down at refresh time the failure shows as
    lakegate_git_credential_refresh_failures_total{namespace} and a log event naming the
    namespace; the next tick after it heals refreshes."""
    stack = await azure_stack_factory(tenants=ENABLED, limits=ONE_SLOT, retry_deadline_seconds=0.2)
    await queued_behind_a_long_run(stack)
    refresher = stack.app[GIT_CREDENTIAL_REFRESHER]
    stack.emulator.advance(2500)
    stack.emulator.fault(path="/api/2.0/git-credentials*", status=503, probability=1.0)
    with capture_logs() as logs:
        await refresher.tick()
    failures = stack.app[METRICS].registry.get_sample_value(
        "lakegate_git_credential_refresh_failures_total", {"namespace": NS, "trigger": "background"}
    )
    assert failures == 1
    events = [e for e in logs if e["event"] == "git_credential_refresh_failed"]
    assert len(events) == 1
    assert events[0]["namespace"] == NS
    assert events[0]["trigger"] == "background"
    stack.emulator.clear_faults()
    await refresher.tick()
    assert refreshes(stack, "updated") == 1


async def test_the_refresher_leaves_principals_without_active_runs_alone(
    azure_stack_factory: AzureStackFactory,
) -> None:
    """Once the namespace's runs have ended, a stale credential is not refreshed in the
    background: the next run's submission refreshes it."""
    stack = await azure_stack_factory(tenants=ENABLED)
    await stack.finish(NS, await stack.submit(NS, ado_spec("done")))
    stack.emulator.advance(3000)
    assert await stack.app[GIT_CREDENTIAL_REFRESHER].tick() == 0
    await asyncio.sleep(0)
    assert stack.credential_calls("PATCH") == 0


async def test_each_write_sets_the_namespace_gauges(azure_stack_factory: AzureStackFactory) -> None:
    """A write at submission counts as trigger=submit and sets when the token expires and
    when it was written."""
    stack = await azure_stack_factory(tenants=ENABLED)
    await stack.finish(NS, await stack.submit(NS, ado_spec("gauges")))
    registry = stack.app[METRICS].registry
    labels = {"namespace": NS, "trigger": "submit", "outcome": "created"}
    assert registry.get_sample_value("lakegate_git_credential_refreshes_total", labels) == 1
    (held,) = stack.emulator.git_credentials()
    until = registry.get_sample_value(
        "lakegate_git_credential_valid_until_seconds", {"namespace": NS}
    )
    assert until is not None
    assert abs(until * 1000 - int(str(held["token_expires_ms"]))) < 5_000
    written = registry.get_sample_value(
        "lakegate_git_credential_last_refresh_timestamp_seconds", {"namespace": NS}
    )
    assert written is not None
    assert written > 0


async def test_the_refresher_looks_every_minute() -> None:
    """run_forever ticks, then sleeps the interval, 60 s unless told otherwise."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise asyncio.CancelledError

    class NoneKnown:
        def known(self) -> list[object]:
            return []

    refresher = GitCredentialRefresher(NoneKnown(), store=None, sleep=sleep)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await refresher.run_forever()
    assert slept == [DEFAULT_INTERVAL_SECONDS] == [60.0]
