"""The composition root: each resource it opens reports its readiness, and only while open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.appkeys import READINESS
from gateway.callers.gate import DISABLED_DETAIL
from gateway.settings import Settings

Client = TestClient[web.Request, web.Application]


def settings_for(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "store": {"sqlite_path": str(tmp_path / "ledger.db")},
            "callers": {"methods": ["none"]},
            "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}},
        }
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(settings_for(tmp_path), Overrides(poll_idle_seconds=0.05))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_readyz_reports_what_the_app_opened(client: Client) -> None:
    """The store, the allow-list, the poller and the webhook dispatcher report themselves; the
    API adds the callers."""
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200
    assert body == {
        "status": "ready",
        "checks": {
            "workspaces": {"ok": True, "detail": "1 workspace(s) on the allow-list"},
            "poller": {"ok": True, "detail": "running"},
            "admission": {"ok": True, "detail": "running"},
            "store": {"ok": True, "detail": "sqlite"},
            "tenant_policies": {"ok": True, "detail": "every configured tenant policy is usable"},
            "callers": {"ok": True, "detail": DISABLED_DETAIL},
            "webhooks": {"ok": True, "detail": "dispatching"},
        },
    }


async def test_a_closed_resource_no_longer_reports(tmp_path: Path) -> None:
    """Once the app has shut down, the store's check has left with the store."""
    app = create_app(settings_for(tmp_path), Overrides(run_poller=False))
    async with TestClient(TestServer(app)):
        assert "store" in await app[READINESS]()
    assert "store" not in await app[READINESS]()
