"""The runs package wired as the composition root wires it, on a real ledger and emulator.

``wired`` is a ``Wired``: a SQLite ledger in ``tmp_path``, the Databricks emulator behind a
real ``JobsClient``, and the ``RunLedger``, ``Submitter``, ``RunsService`` and ``Poller`` on
top as ``wire_runs`` connects them, all on one fake clock and without jitter. Identities
come from ``Identities``, a resolver that gives every namespace the emulator user's PAT and
can be told to fail.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from gateway.databricks.jobs import JobsClient, Workspace
from gateway.errors import CredentialUnavailable, LakegateError
from gateway.identity.principal import Principal
from gateway.identity.resolver import IdentityOverride, ResolvedIdentity
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState, request_fingerprint
from gateway.runs.ledger import RunLedger
from gateway.runs.poller import Poller
from gateway.runs.service import RunsService
from gateway.runs.submitter import Submitter
from gateway.runs.types import SubmitRequest
from gateway.runs.wiring import wire_runs
from gateway.settings import DatabricksSettings, PollerSettings, Settings
from gateway.store.base import NewRun
from gateway.store.sqlite import SqliteStore
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.support.clock import Clock

SPEC: dict[str, Any] = {
    "run_name": "team-a/etl",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Repos/etl/main"}}],
}
POLLER = PollerSettings(min_interval_seconds=5, max_interval_seconds=60)
# Quick to give up, so a fault the emulator keeps injecting ends a call in well under a second.
DATABRICKS = DatabricksSettings(
    retry_deadline_seconds=0.3, retry_initial_seconds=0.01, retry_max_seconds=0.05
)
# Every deferred submission waits exactly the un-jittered delay.
NO_JITTER = 0.5


def new_run(
    state: RunState = RunState.SUBMITTING,
    *,
    key: str | None = None,
    identity_ref: dict[str, str] | None = None,
    next_poll_at: datetime | None = None,
    principal: dict[str, str] | None = None,
) -> NewRun:
    """A run of team-a as the service would hand it to the ledger."""
    return NewRun(
        namespace="team-a",
        spec=SPEC,
        request_fingerprint=request_fingerprint(SPEC),
        workspace="emulated",
        state=state,
        idempotency_key=key,
        identity_ref=identity_ref or {},
        next_poll_at=next_poll_at,
        principal=principal or {},
    )


class Token:
    """A bearer token that never changes; the TokenProvider a PAT amounts to."""

    def __init__(self, value: str) -> None:
        self._value = value

    async def token(self) -> str:
        return self._value

    def invalidate(self, token: str) -> None:
        pass


@dataclass
class Identities:
    """An IdentityResolver: every namespace runs as the emulator user.

    ``failures`` are raised by the next resolutions, in order; ``refused`` names the
    ServiceAccounts or Secrets that resolve no more. ``calls`` records every resolution.
    """

    host: str
    pat: str
    failures: list[LakegateError] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    calls: list[tuple[str, IdentityOverride | None]] = field(default_factory=list)
    # Whom every resolution names (None: resolutions name no principal, as before).
    principal: Principal | None = None

    async def resolve(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity:
        self.calls.append((namespace, override))
        if self.failures:
            raise self.failures.pop(0)
        chosen = override and (override.service_account or override.secret)
        if chosen in self.refused:
            raise CredentialUnavailable(f"{chosen} is gone", namespace=namespace)
        return ResolvedIdentity(
            namespace=namespace,
            workspace_name="emulated",
            workspace=Workspace(self.host),
            credential=Token(self.pat),
            key=f"pat:{namespace}",
            kind="pat",
            origin="test",
            principal=self.principal,
        )


@dataclass
class Wired:
    store: SqliteStore
    ledger: RunLedger
    submitter: Submitter
    service: RunsService
    poller: Poller
    jobs: JobsClient
    metrics: Metrics
    clock: Clock
    identities: Identities
    emulator: DatabricksEmulator

    def count(self, name: str, **labels: str) -> float:
        """A counter's value (0 when it was never incremented)."""
        return self.metrics.registry.get_sample_value(f"{name}_total", labels) or 0.0

    async def submit(
        self, namespace: str = "team-a", *, key: str | None = None, **spec: Any
    ) -> RunRecord:
        request = SubmitRequest(spec={**SPEC, **spec})
        return (await self.service.submit(namespace, request, idempotency_key=key)).run

    async def outbox(self, run: RunRecord) -> list[Mapping[str, Any]]:
        return [entry.payload for entry in await self.store.list_outbox(run_id=run.id)]


@pytest.fixture
def clock() -> Clock:
    # Near real time: the emulator dates runs by its own (real) clock, and the poller asks
    # runs/list for runs started after the group's oldest.
    return Clock(time.time())


@pytest.fixture
def runs_settings() -> Settings:
    """The settings ``wired`` builds on; a module overrides this fixture to change them."""
    return Settings(poller=POLLER)


@pytest.fixture
def runs_identities(databricks_emulator: DatabricksEmulator) -> Identities:
    """The resolver ``wired`` builds on; a module overrides this fixture to change it."""
    return Identities(databricks_emulator.url, databricks_emulator.pat)


@pytest.fixture
async def wired(
    tmp_path: Any,
    databricks_emulator: DatabricksEmulator,
    clock: Clock,
    runs_settings: Settings,
    runs_identities: Identities,
) -> AsyncIterator[Wired]:
    store = SqliteStore(tmp_path / "ledger.db")
    await store.open()
    metrics = Metrics()
    identities = runs_identities
    async with aiohttp.ClientSession() as session:
        jobs = JobsClient.from_settings(session, DATABRICKS)
        runs = wire_runs(
            store=store,
            jobs=jobs,
            identities=identities,
            settings=runs_settings,
            metrics=metrics,
            clock=clock.utc,
            inline_submit_seconds=2.0,
            jitter=lambda: NO_JITTER,
        )
        yield Wired(
            store, runs.ledger, runs.submitter, runs.service, runs.poller, jobs, metrics, clock,
            identities, databricks_emulator,
        )  # fmt: skip
    await store.close()
