"""Request budgets against the emulated workspace: counted where the requests arrive.

A sampler reads the emulator's request counts every few milliseconds; between any two samples
the requests answered must fit the budget (``rate * seconds + 1``, one more for the sampling
edges). Fairness is an order, not a time: a quiet namespace's requests are answered while a
busy one still has most of its backlog waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.databricks.budgets import RequestBudgets, acting_for
from gateway.databricks.jobs import JobsClient, Workspace
from gateway.settings import DatabricksSettings, WorkspaceSettings
from tests.fixtures.databricks_emulator import DatabricksEmulator

SPEC = {
    "run_name": "budget",
    "tasks": [
        {"task_key": "t", "existing_cluster_id": "c", "notebook_task": {"notebook_path": "/n"}}
    ],
}
SUBMIT_RATE, GET_RATE = 10.0, 40.0


class Pat:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        pass


def answered(emulator: DatabricksEmulator, endpoint: str) -> int:
    rows = emulator.stats()["requests"]
    return sum(r["count"] for r in rows if r["path"].endswith(f"/jobs/{endpoint}"))


@contextlib.asynccontextmanager
async def sampled(emulator: DatabricksEmulator, endpoint: str) -> AsyncIterator[list[Any]]:
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        while True:
            samples.append((time.monotonic(), answered(emulator, endpoint)))
            await asyncio.sleep(0.01)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        samples.append((time.monotonic(), answered(emulator, endpoint)))


def assert_within_budget(samples: list[tuple[float, int]], rate: float) -> None:
    for i, (start, before) in enumerate(samples):
        for end, after in samples[i + 1 :]:
            assert after - before <= rate * (end - start) + 2, (start, end, after - before)


@pytest.fixture
async def jobs(
    session: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> tuple[JobsClient, Workspace]:
    settings = WorkspaceSettings(
        host=databricks_emulator.url,
        submit_requests_per_second=SUBMIT_RATE,
        get_requests_per_second=GET_RATE,
    )
    client = JobsClient.from_settings(
        session, DatabricksSettings(), budgets=RequestBudgets.of({"emulated": settings})
    )
    return client, Workspace.from_settings(settings)


async def test_submits_never_pass_the_budget(
    jobs: tuple[JobsClient, Workspace], databricks_emulator: DatabricksEmulator
) -> None:
    """20 submissions at once arrive at most 10 a second, and all of them do."""
    client, ws = jobs
    cred = Pat(databricks_emulator.pat)
    async with sampled(databricks_emulator, "runs/submit") as samples:
        with acting_for("team-a"):
            async with asyncio.TaskGroup() as group:
                for n in range(20):
                    group.create_task(client.submit(ws, cred, SPEC, idempotency_token=f"t-{n}"))
    assert samples[-1][1] == 20
    assert_within_budget(samples, SUBMIT_RATE)


async def test_a_busy_namespaces_polls_do_not_starve_another(
    jobs: tuple[JobsClient, Workspace], databricks_emulator: DatabricksEmulator
) -> None:
    """80 gets of one namespace queued first; another's 5 gets, one after the other, are
    all answered while most of the 80 still wait, and the workspace sees at most 40 a second."""
    client, ws = jobs
    busy, quiet = Pat(databricks_emulator.pat), Pat(databricks_emulator.other_pat)
    busy_run = await client.submit(ws, busy, SPEC, idempotency_token="busy")
    quiet_run = await client.submit(ws, quiet, SPEC, idempotency_token="quiet")
    done = {"busy": 0}

    async def poll_busy() -> None:
        with acting_for("team-busy"):
            await client.get(ws, busy, busy_run)
        done["busy"] += 1

    async with sampled(databricks_emulator, "runs/get") as samples, asyncio.TaskGroup() as group:
        for _ in range(80):
            group.create_task(poll_busy())
        await asyncio.sleep(0.05)  # the backlog is queued before the quiet one asks
        with acting_for("team-quiet"):
            for _ in range(5):
                await client.get(ws, quiet, quiet_run)
        busy_when_quiet_done = done["busy"]
    assert busy_when_quiet_done < 40, busy_when_quiet_done
    assert done["busy"] == 80
    assert_within_budget(samples, GET_RATE)
