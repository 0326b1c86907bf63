"""Replicas on one ledger: claims kept while the work lasts, runs polled and admitted by one.

Two ``wire_runs`` on two connections to one SQLite file stand for two replicas; each has its
own replica id, as ``server.replica_id`` gives every process its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from gateway.databricks.jobs import JobsClient
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState
from gateway.runs.leases import Claims
from gateway.runs.types import SubmitRequest, utcnow
from gateway.runs.wiring import Runs, wire_runs
from gateway.settings import Settings
from gateway.settings.process import ServerSettings, StoreSettings
from gateway.settings.webhooks import WebhooksSettings
from gateway.store.base import NewRun
from gateway.store.sqlite import SqliteStore
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.runs.conftest import DATABRICKS, NO_JITTER, POLLER, SPEC, Identities, new_run
from tests.support.clock import Clock

S = RunState
FOLLOWED = frozenset({S.SUBMITTING, S.PENDING, S.RUNNING})


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[list[SqliteStore]]:
    opened = [SqliteStore(tmp_path / "ledger.db") for _ in range(2)]
    for store in opened:
        await store.open()
    yield opened
    for store in opened:
        await store.close()


async def _claim(store: SqliteStore, owner: str, *, later: float = 0) -> list[int]:
    runs = await store.claim_due_runs(
        utcnow() + timedelta(seconds=later),
        owner=owner,
        lease_seconds=30,
        states=FOLLOWED,
        limit=10,
    )
    return [run.id for run in runs]


def _of(namespace: str, state: RunState = S.SUBMITTING, **fields: Any) -> NewRun:
    return replace(new_run(state, **fields), namespace=namespace)


async def test_a_claim_is_kept_while_the_work_lasts_and_freed_after(
    stores: list[SqliteStore],
) -> None:
    """While ``holding`` runs the lease is renewed past its time; on leaving, it is released."""
    mine, theirs = stores
    run, _ = await mine.create_run(new_run(next_poll_at=utcnow()), utcnow())
    claims = Claims(mine, "replica-a", lease_seconds=0.3)
    await mine.claim_due_runs(
        utcnow(), owner="replica-a", lease_seconds=0.3, states=FOLLOWED, limit=1
    )
    async with claims.holding([run.id]):
        await asyncio.sleep(0.7)  # more than twice the lease
        assert await _claim(theirs, "replica-b") == []
    assert await _claim(theirs, "replica-b") == [run.id]


async def test_a_claim_taken_over_is_reported_lost(stores: list[SqliteStore]) -> None:
    """A renewal that finds the run claimed by another replica logs leases_lost."""
    mine, theirs = stores
    run, _ = await mine.create_run(new_run(next_poll_at=utcnow()), utcnow())
    claims = Claims(mine, "replica-a", lease_seconds=0.3)
    await mine.claim_due_runs(
        utcnow(), owner="replica-a", lease_seconds=0.3, states=FOLLOWED, limit=1
    )
    with capture_logs() as logs:
        async with claims.holding([run.id]):
            # As if replica-a had hung for an hour: its lease ran out and replica-b took over.
            assert await _claim(theirs, "replica-b", later=3600) == [run.id]
            await asyncio.sleep(0.25)
    lost = [e for e in logs if e["event"] == "leases_lost"]
    assert lost == [{"event": "leases_lost", "owner": "replica-a", "run_ids": [run.id],
                     "log_level": "warning"}]  # fmt: skip
    assert await mine.release_leases([run.id], owner="replica-a") == 0


def _settings(emulator: DatabricksEmulator, replica: str, **quotas: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {"replica_id": replica},
            "poller": POLLER.model_dump(),
            "workspaces": {"emulated": {"host": emulator.url, "max_active_runs": 3}},
            "tenants": {"defaults": {"workspace": "emulated", "quotas": quotas}},
        }
    )


@pytest.fixture
async def replicas(
    stores: list[SqliteStore], databricks_emulator: DatabricksEmulator, clock: Clock
) -> AsyncIterator[list[Runs]]:
    identities = Identities(databricks_emulator.url, databricks_emulator.pat)
    async with aiohttp.ClientSession() as session:
        yield [
            wire_runs(
                store=store,
                jobs=JobsClient.from_settings(session, DATABRICKS),
                identities=identities,
                settings=_settings(databricks_emulator, f"replica-{i}", max_active_runs=2),
                metrics=Metrics(),
                clock=clock.utc,
                inline_submit_seconds=2.0,
                jitter=lambda: NO_JITTER,
            )
            for i, store in enumerate(stores)
        ]


def test_every_replica_has_its_own_id(replicas: list[Runs]) -> None:
    """The ledger's writes are fenced as the replica id the settings name."""
    assert [r.ledger.owner for r in replicas] == ["replica-0", "replica-1"]
    first, second = ServerSettings().replica_id, ServerSettings().replica_id
    assert first != second
    assert first.startswith(f"{socket.gethostname()}-{os.getpid()}-")


async def test_two_pollers_share_the_due_runs(
    replicas: list[Runs], stores: list[SqliteStore], clock: Clock
) -> None:
    """Two replicas ticking at once handle every due run once between them: 4, not 8."""
    for namespace in ("team-a", "team-b", "team-c", "team-d"):
        await stores[0].create_run(_of(namespace, next_poll_at=clock.utc()), clock.utc())
    handled = await asyncio.gather(*(r.poller.tick() for r in replicas))
    assert sum(handled) == 4
    for namespace in ("team-a", "team-b", "team-c", "team-d"):
        assert [run.state for run in await stores[0].list_runs(namespace)] == [S.PENDING]


async def test_two_admitters_hold_the_workspace_cap_together(
    replicas: list[Runs], stores: list[SqliteStore]
) -> None:
    """A pass whose counts went stale while another replica admitted promotes nothing more:
    the workspace's cap of 3 holds, because each promotion re-checks in its transaction."""
    for namespace in ("team-a", "team-b"):
        for _ in range(3):
            await stores[0].create_run(_of(namespace, S.QUEUED), utcnow())
    claim = stores[0].claim_queued_heads

    async def after_the_other_pass(*args: Any, **kwargs: Any) -> list[RunRecord]:
        # replica-0 has read its counts (nothing active); replica-1 admits in between.
        assert await replicas[1].admitter.tick() == 3
        return await claim(*args, **kwargs)

    stores[0].claim_queued_heads = after_the_other_pass  # type: ignore[method-assign]
    assert await replicas[0].admitter.tick() == 0
    assert await stores[0].active_counts() == {
        ("emulated", "team-a"): 2,
        ("emulated", "team-b"): 1,
    }


async def test_a_submission_through_either_replica_is_one_run(
    replicas: list[Runs], databricks_emulator: DatabricksEmulator
) -> None:
    """Both replicas' services take submissions on one ledger; Databricks sees each once."""
    for i in range(3):  # the workspace's cap
        await replicas[i % 2].service.submit(
            f"team-{i}", SubmitRequest(spec=SPEC), idempotency_key=None
        )
    tokens = [r["idempotency_token"] for r in databricks_emulator.runs()]
    assert len(tokens) == len(set(tokens)) == 3


async def test_a_hold_inside_a_hold_leaves_the_outer_claim_in_place(
    stores: list[SqliteStore],
) -> None:
    """A group's refresh held inside the tick's hold releases only what the tick does not hold."""
    mine, theirs = stores
    first, _ = await mine.create_run(new_run(next_poll_at=utcnow()), utcnow())
    second, _ = await mine.create_run(new_run(next_poll_at=utcnow()), utcnow())
    claims = Claims(mine, "replica-a", lease_seconds=30)
    await mine.claim_due_runs(
        utcnow(), owner="replica-a", lease_seconds=30, states=FOLLOWED, limit=2
    )
    async with claims.holding([first.id]):
        async with claims.holding([first.id, second.id]):
            pass
        assert await _claim(theirs, "replica-b") == [second.id]
    assert await _claim(theirs, "replica-b") == [first.id]


async def test_claims_last_the_store_lease_seconds_setting(
    stores: list[SqliteStore], databricks_emulator: DatabricksEmulator, clock: Clock
) -> None:
    """store.lease_seconds is what the poller's claims are leased for, not a constant."""
    settings = _settings(databricks_emulator, "replica-a").model_copy(
        update={"store": StoreSettings(lease_seconds=7)}
    )
    store = stores[0]
    await store.create_run(_of("team-a", next_poll_at=clock.utc()), clock.utc())
    leased: list[float] = []
    claim = store.claim_due_runs

    async def recorded(*args: Any, **kwargs: Any) -> list[RunRecord]:
        leased.append(kwargs["lease_seconds"])
        return await claim(*args, **kwargs)

    store.claim_due_runs = recorded  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as session:
        runs = wire_runs(
            store=store, jobs=JobsClient.from_settings(session, DATABRICKS),
            identities=Identities(databricks_emulator.url, databricks_emulator.pat),
            settings=settings, metrics=Metrics(), clock=clock.utc, jitter=lambda: NO_JITTER,
        )  # fmt: skip
        assert await runs.poller.tick() == 1
    assert leased == [7.0]


@pytest.mark.parametrize("seconds", [0, 0.5, 601])
def test_lease_seconds_out_of_bounds_are_refused(seconds: float) -> None:
    """Both leases, the runs' and the outbox's, are between 1 s and 10 minutes."""
    with pytest.raises(ValidationError, match="lease_seconds"):
        StoreSettings(lease_seconds=seconds)
    with pytest.raises(ValidationError, match="lease_seconds"):
        WebhooksSettings(lease_seconds=seconds)


def test_the_default_leases_are_short() -> None:
    """A dead replica's runs wait 20 s for another, its webhook deliveries 30 s."""
    assert (StoreSettings().lease_seconds, WebhooksSettings().lease_seconds) == (20.0, 30.0)
