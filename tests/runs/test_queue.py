"""The admission queue on a real ledger and the emulator: queue, admit, submit, refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.databricks.jobs import JobsClient
from gateway.errors import InvalidRequest, QuotaExceeded
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
QUOTAS = QuotaSettings(max_active_runs=1, max_queued_runs=2, submissions_per_minute=600, burst=10)


def tenants(**quotas: Any) -> TenantsSettings:
    return TenantsSettings.model_validate(
        {
            "defaults": {"quotas": QUOTAS.model_copy(update=quotas).model_dump()},
            "namespaces": {
                "strict": {"guardrails": {"max_workers": 4, "node_types": ["m5.large"]}}
            },
        }
    )


@pytest.fixture
async def runs(
    tmp_path: Any, databricks_emulator: DatabricksEmulator, clock: Clock
) -> AsyncIterator[Runs]:
    store = SqliteStore(tmp_path / "ledger.db")
    await store.open()
    async with aiohttp.ClientSession() as session:
        yield wire_runs(
            store=store,
            jobs=JobsClient.from_settings(session, DATABRICKS),
            identities=Identities(databricks_emulator.url, databricks_emulator.pat),
            settings=Settings(poller=POLLER, tenants=tenants()),
            metrics=Metrics(),
            clock=clock.utc,
            inline_submit_seconds=2.0,
            jitter=lambda: NO_JITTER,
        )
    await store.close()


async def _submit(runs: Runs, namespace: str = "team-a", **spec: Any) -> Any:
    request = SubmitRequest(spec={**SPEC, **spec})
    return (await runs.service.submit(namespace, request, idempotency_key=None)).run


async def test_over_the_active_limit_a_run_waits_and_never_reaches_databricks(
    runs: Runs, databricks_emulator: DatabricksEmulator
) -> None:
    """The second run is QUEUED, not submitted; its history says why it waits."""
    first = await _submit(runs)
    second = await _submit(runs)
    assert first.state is S.PENDING
    assert second.state is S.QUEUED
    assert len(databricks_emulator.runs()) == 1
    held = await runs.service.get("team-a", second.id)
    assert "max_active_runs 1" in held.history[0].message


async def test_a_queued_run_is_admitted_when_capacity_frees_and_then_submitted(
    runs: Runs, databricks_emulator: DatabricksEmulator, clock: Clock
) -> None:
    """Once the active run ends, a pass admits the oldest queued run and the poller submits it."""
    first = await _submit(runs)
    second = await _submit(runs)
    third = await _submit(runs)
    assert await runs.admitter.tick() == 0
    await runs.ledger.finish(first, S.SUCCEEDED, "done")
    assert await runs.admitter.tick() == 1
    admitted = await runs.service.get("team-a", second.id)
    assert admitted.state is S.SUBMITTING
    assert admitted.history[-1].message.startswith("admitted after")
    assert (await runs.service.get("team-a", third.id)).state is S.QUEUED
    await runs.poller.tick()
    assert (await runs.service.get("team-a", second.id)).state is S.PENDING
    assert len(databricks_emulator.runs()) == 2


async def test_a_full_queue_is_refused_with_its_limit(runs: Runs) -> None:
    """Past max_queued_runs the answer is QuotaExceeded naming it, and nothing is stored."""
    for _ in range(3):
        await _submit(runs)
    with pytest.raises(QuotaExceeded) as caught:
        await _submit(runs)
    assert (caught.value.limit, caught.value.value, caught.value.usage) == (
        "max_queued_runs",
        2,
        2,
    )
    assert caught.value.retry_after > 0
    page = await runs.service.list("team-a", states=None, limit=10, cursor=None)
    assert len(page.runs) == 3


async def test_cancelling_a_queued_run_is_local(
    runs: Runs, databricks_emulator: DatabricksEmulator
) -> None:
    """A queued run cancels without any call to Databricks and is never admitted."""
    await _submit(runs)
    queued = await _submit(runs)
    canceled = await runs.service.cancel("team-a", queued.id)
    assert canceled.state is S.CANCELED
    assert await runs.admitter.tick() == 0
    assert len(databricks_emulator.runs()) == 1


async def test_a_guardrail_refusal_names_the_rule_and_field(runs: Runs) -> None:
    """A spec over the namespace's max_workers is refused naming the rule and field."""
    big = [{"task_key": "main", "new_cluster": {"num_workers": 8, "node_type_id": "m5.large"}}]
    with pytest.raises(InvalidRequest) as caught:
        await _submit(runs, "strict", tasks=big)
    assert caught.value.field == "spec.tasks[0].new_cluster.num_workers"
    assert "max_workers" in caught.value.message
