"""Workspace caps: a Databricks 429 on submit halves the cap for a while; nothing is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.databricks.jobs import JobsClient
from gateway.metrics import Metrics
from gateway.model import RunState
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.types import SubmitRequest
from gateway.runs.wiring import Runs, wire_runs
from gateway.settings import Settings, WorkspaceSettings
from gateway.store.sqlite import SqliteStore
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.runs.conftest import DATABRICKS, NO_JITTER, POLLER, SPEC, Identities
from tests.support.clock import Clock

S = RunState


def caps(cap: int | None, clock: Clock) -> WorkspaceCaps:
    workspaces = {
        "ws": WorkspaceSettings(host="https://adb-1.2.azuredatabricks.net", max_active_runs=cap)
    }
    return WorkspaceCaps(lambda: workspaces, clock=clock.utc, hold_seconds=60)


@pytest.mark.parametrize(
    ("configured", "after_one", "after_two"), [(20, 10, 5), (None, 500, 250), (1, 1, 1)]
)
def test_each_429_halves_the_cap_while_it_holds(
    configured: int | None, after_one: int, after_two: int
) -> None:
    """The cap halves per 429 (from 1,000 when none is set), never below 1."""
    clock = Clock(1_000_000.0)
    held = caps(configured, clock)
    assert held.cap("ws") == configured
    held.rate_limited("ws")
    assert held.cap("ws") == after_one
    held.rate_limited("ws")
    assert held.cap("ws") == after_two


def test_the_configured_cap_is_back_when_the_hold_ends() -> None:
    """After hold_seconds without another 429 the configured cap applies again."""
    clock = Clock(1_000_000.0)
    held = caps(20, clock)
    held.rate_limited("ws")
    clock.advance(59)
    assert held.cap("ws") == 10
    clock.advance(2)
    assert held.cap("ws") == 20


@pytest.fixture
async def runs(
    tmp_path: Any, databricks_emulator: DatabricksEmulator, clock: Clock
) -> AsyncIterator[Runs]:
    store = SqliteStore(tmp_path / "ledger.db")
    await store.open()
    settings = Settings.model_validate(
        {
            "poller": POLLER.model_dump(),
            "workspaces": {"emulated": {"host": databricks_emulator.url, "max_active_runs": 4}},
            "tenants": {"defaults": {"workspace": "emulated"}},
        }
    )
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
    await store.close()


async def test_a_429_on_submit_lowers_the_cap_and_loses_nothing(
    runs: Runs, databricks_emulator: DatabricksEmulator
) -> None:
    """Each 429 defers its run and halves the cap (4, 2, 1): the third run queues; later the
    deferred runs go through with their own tokens, one Databricks run each."""
    databricks_emulator.fault(path="/api/*/jobs/runs/submit", status=429, probability=1)
    request = SubmitRequest(spec=SPEC)
    first = (await runs.service.submit("team-a", request, idempotency_key=None)).run
    assert first.state is S.SUBMITTING
    second = (await runs.service.submit("team-a", request, idempotency_key=None)).run
    third = (await runs.service.submit("team-a", request, idempotency_key=None)).run
    assert (second.state, third.state) == (S.SUBMITTING, S.QUEUED)
    quota = await runs.quota.report("team-a")
    assert quota["usage"]["workspace_max_active_runs"] == 1
    databricks_emulator.clear_faults()
    for run in (first, second):
        done = await runs.submitter.submit_remote(run, deadline=5)
        assert done.state is S.PENDING
    tokens = [r["idempotency_token"] for r in databricks_emulator.runs()]
    assert len(tokens) == len(set(tokens)) == 2
