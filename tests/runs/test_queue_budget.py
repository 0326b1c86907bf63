"""The run-hours budget on a real ledger: over it runs queue (or are refused) until it frees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.databricks.jobs import JobsClient
from gateway.errors import QuotaExceeded
from gateway.metrics import Metrics
from gateway.model import RunState
from gateway.runs.types import SubmitRequest
from gateway.runs.wiring import Runs, wire_runs
from gateway.settings import QuotaSettings, Settings, TenantsSettings
from gateway.store.sqlite import SqliteStore
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.runs.conftest import DATABRICKS, NO_JITTER, POLLER, SPEC, Identities
from tests.support.clock import Clock

S = RunState
DAY = 86_400.0
# 36 s of run time a day; runs of the tests last 40 s, so one spends it.
BUDGET = QuotaSettings(max_active_runs=5, submissions_per_minute=600, burst=10,
                       run_hours_per_day=0.01)  # fmt: skip


def _tenants(**quotas: Any) -> TenantsSettings:
    return TenantsSettings.model_validate(
        {"defaults": {"quotas": BUDGET.model_copy(update=quotas).model_dump()}}
    )


@pytest.fixture
async def settings() -> Settings:
    return Settings(poller=POLLER, tenants=_tenants())


@pytest.fixture
async def store(tmp_path: Any) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "ledger.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def runs(
    store: SqliteStore, databricks_emulator: DatabricksEmulator, clock: Clock, settings: Settings
) -> AsyncIterator[Runs]:
    async with aiohttp.ClientSession() as session:
        yield wire_runs(
            store=store,
            jobs=JobsClient.from_settings(session, DATABRICKS),
            identities=Identities(databricks_emulator.url, databricks_emulator.pat),
            settings=settings,
            metrics=Metrics(),
            clock=clock.utc,
            inline_submit_seconds=2.0,
            jitter=lambda: NO_JITTER,
        )


async def _submit(runs: Runs) -> Any:
    request = SubmitRequest(spec=SPEC)
    return (await runs.service.submit("team-a", request, idempotency_key=None)).run


async def _spend_the_budget(runs: Runs, clock: Clock) -> None:
    """One run of 40 s, ended: 40 s of the 36 s budget used."""
    first = await _submit(runs)
    clock.advance(40)
    await runs.ledger.finish(first, S.SUCCEEDED, "done")


async def test_over_the_budget_a_run_queues_until_run_time_leaves_the_day(
    runs: Runs, clock: Clock
) -> None:
    """Queued while the day holds 40 s of run time; admitted once under 36 s again."""
    await _spend_the_budget(runs, clock)
    waiting = await _submit(runs)
    assert waiting.state is S.QUEUED
    held = await runs.service.get("team-a", waiting.id)
    assert "run_hours_per_day 0.01" in held.history[0].message
    clock.advance(DAY - 40)  # the first run's start is at the window's edge: still 40 s
    assert await runs.admitter.tick() == 0
    clock.advance(10)  # 30 s of it left in the window
    assert await runs.admitter.tick() == 1
    assert (await runs.service.get("team-a", waiting.id)).state is S.SUBMITTING


async def test_a_refusing_budget_answers_429_with_when_it_frees(
    runs: Runs, clock: Clock, settings: Settings
) -> None:
    """Refused over the budget with the exact Retry-After; a retry then is accepted."""
    object.__setattr__(settings, "tenants", _tenants(over_run_hours="refuse"))
    await _spend_the_budget(runs, clock)
    with pytest.raises(QuotaExceeded) as caught:
        await _submit(runs)
    refused = caught.value
    assert (refused.limit, refused.value, refused.usage) == ("run_hours_per_day", 0.01, 0.011)
    # The 40 s span starts leaving the window after DAY - 40 s; 4 s + 1 s of headroom must go.
    assert refused.retry_after == pytest.approx(DAY - 40 + 5)
    clock.advance(refused.retry_after)
    assert (await _submit(runs)).state is S.PENDING


async def test_the_quota_view_shows_run_hours(runs: Runs, clock: Clock) -> None:
    """GET .../quota's usage says the run-hours used, the budget and when it frees."""
    await _spend_the_budget(runs, clock)
    report = await runs.quota.report("team-a")
    assert report["usage"]["run_hours"] == {
        "used": 0.011,
        "budget": 0.01,
        "retry_after_seconds": DAY - 40 + 5,
    }
    assert report["limits"]["run_hours_per_day"] == 0.01


async def test_the_quota_gauges_show_usage_against_each_limit(
    runs: Runs, clock: Clock, store: SqliteStore
) -> None:
    """Active vs max_active_runs, queued vs max_queued_runs, run-hours vs the budget."""
    await _spend_the_budget(runs, clock)
    await _submit(runs)  # over the budget: queued
    counts = await store.counts_by_namespace_state()
    metrics = Metrics()
    metrics.set_quota_usage(await runs.quota.gauges(counts))
    text = metrics.render().decode()
    for limit, usage, value in [
        ("max_active_runs", 0.0, 5.0),
        ("max_queued_runs", 1.0, 200.0),
        ("run_hours_per_day", 40 / 3600, 0.01),
    ]:
        labels = f'{{limit="{limit}",namespace="team-a"}}'
        assert f"lakegate_quota_usage{labels} {usage!r}" in text
        assert f"lakegate_quota_limit{labels} {value!r}" in text
