"""A dispatcher on a real ledger, delivering over loopback to a verifying receiver."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState
from gateway.runs.specs import completed_event
from gateway.runs.types import utcnow
from gateway.settings import Settings
from gateway.store.base import OutboxEntry, Settle, Settlement
from gateway.store.sqlite import SqliteStore
from gateway.webhooks.admin import WebhookAdmin
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.guard import Guard
from gateway.webhooks.keys import SigningKeys
from gateway.webhooks.resolver import GuardedResolver
from tests.runs.conftest import new_run
from tests.webhooks.receiver import Receiver, running

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
FAST = [0.0, 0.05, 0.05, 0.05]


@dataclass
class Rig:
    store: SqliteStore
    receiver: Receiver
    dispatcher: Dispatcher
    admin: WebhookAdmin
    metrics: Metrics

    async def complete(
        self,
        state: RunState = RunState.SUCCEEDED,
        *,
        namespace: str = "team-a",
        run: RunRecord | None = None,
    ) -> int:
        """A run (new, or ``run``) that ends now, with its run.completed row; its id."""
        if run is None:
            run, _ = await self.store.create_run(replace(new_run(), namespace=namespace), utcnow())
        await self.store.transition(
            run.id, state, expected={run.state}, now=utcnow(),
            outbox_event=completed_event(replace(run, state=state), at=utcnow()),
        )  # fmt: skip
        return run.id

    async def rows(self) -> list[OutboxEntry]:
        return await self.store.list_outbox()

    async def settled(self) -> list[OutboxEntry]:
        """Wait until no row is pending; the rows then."""
        async with asyncio.timeout(10):
            while True:
                rows = await self.rows()
                if all(r.delivered_at or r.dead_at for r in rows):
                    return rows
                await asyncio.sleep(0.02)


RigFactory = Callable[..., contextlib.AbstractAsyncContextManager[Rig]]


def _settings(url: str, schedule: Sequence[float], **webhooks: Any) -> Settings:
    return Settings.model_validate(
        {
            "webhooks": {
                "allow_http": True,
                "allow_networks": ["127.0.0.0/8"],
                "retry_schedule_seconds": list(schedule),
                "poll_interval_seconds": 0.02,
                "timeout_seconds": 0.5,
                **webhooks,
            },
            "tenants": {
                "namespaces": {"team-a": {"webhooks": {"url": url, "secret_value": SECRET}}}
            },
        }
    )


@pytest.fixture
def rig(tmp_path: Path) -> RigFactory:
    @contextlib.asynccontextmanager
    async def make(
        *,
        statuses: Sequence[int] = (),
        schedule: Sequence[float] = FAST,
        url: Callable[[str], str] = lambda u: u,
        resolver: AbstractResolver | None = None,
        **webhooks: Any,
    ) -> AsyncIterator[Rig]:
        store = SqliteStore(tmp_path / "ledger.db")
        await store.open()
        receiver = Receiver(SECRET, statuses=list(statuses))
        async with running(receiver):
            settings = _settings(url(receiver.url), schedule, **webhooks)
            guard = Guard.of(settings.webhooks.allow_networks, allow_http=True)
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard, resolver))
            metrics = Metrics()
            async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
                dispatcher = Dispatcher(
                    store=store, session=session, settings=settings,
                    keys=SigningKeys(None, {}), metrics=metrics, clock=utcnow,
                )  # fmt: skip
                admin = WebhookAdmin(store, clock=utcnow, nudge=dispatcher.nudge)
                task = asyncio.create_task(dispatcher.run_forever())
                try:
                    yield Rig(store, receiver, dispatcher, admin, metrics)
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        await store.close()

    return make


# --- the API and the CLI on a real app, the dispatcher off ---------------------------------

ApiClient = TestClient[web.Request, web.Application]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "ledger.db")
    yield store
    await store.close()


@pytest.fixture
async def client(store: SqliteStore) -> AsyncIterator[ApiClient]:
    settings = Settings.model_validate(
        {
            "callers": {"methods": ["none"]},
            "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}},
        }
    )
    app = create_app(settings, Overrides(store=store, run_poller=False, run_dispatcher=False))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def dead_event(store: SqliteStore, namespace: str = "team-a") -> int:
    """A run of ``namespace`` that failed, with its run.completed event dead; the event id."""
    run, _ = await store.create_run(replace(new_run(), namespace=namespace), utcnow())
    ended = replace(run, state=RunState.FAILED)
    await store.transition(
        run.id, RunState.FAILED, expected={run.state}, now=utcnow(),
        outbox_event=completed_event(ended, at=utcnow()),
    )  # fmt: skip
    [row] = await store.list_outbox(run_id=run.id)
    await store.settle_outbox(
        [Settlement(row.id, Settle.DEAD, at=utcnow(), attempts=8, status=500, error="HTTP 500")],
        owner="operator",
    )
    return row.id
