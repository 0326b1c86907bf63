"""/readyz tells the truth (issue 9): a running gateway whose ledger file is removed or
replaced, or whose Kubernetes API has gone away past the threshold, answers 503 naming the
part and the cause, and 200 again once it is put right."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.emulator.kubernetes import KubeApiServer
from gateway.settings import Settings
from tests.fixtures.kube_api import GATEWAY_TOKEN, kube_config
from tests.test_app import Client, settings_for

THRESHOLD = 0.4


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(settings_for(tmp_path), Overrides(run_poller=False))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def readiness(client: Client) -> tuple[int, dict[str, Any]]:
    async with client.get("/readyz") as resp:
        return resp.status, (await resp.json())["checks"]


async def until(client: Client, status: int, part: str, detail: str) -> dict[str, Any]:
    """Probe as the kubelet does until /readyz answers ``status`` and ``part``'s detail
    starts with ``detail``; that part's check."""
    async with asyncio.timeout(10):
        while True:
            answered, checks = await readiness(client)
            check = checks.get(part, {})
            if answered == status and check.get("detail", "").startswith(detail):
                return dict(check)
            await asyncio.sleep(0.05)


async def test_a_ledger_file_moved_away_is_not_ready_until_it_is_back(
    client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    assert (await readiness(client))[0] == 200
    os.rename(path, tmp_path / "aside.db")
    status, checks = await readiness(client)
    assert status == 503
    assert checks["store"]["ok"] is False
    assert checks["store"]["detail"].startswith(f"the ledger file {path} was removed")
    os.rename(tmp_path / "aside.db", path)
    status, checks = await readiness(client)
    assert (status, checks["store"]) == (200, {"ok": True, "detail": "sqlite"})


async def test_a_ledger_file_replaced_is_not_ready_until_the_original_is_back(
    client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    os.rename(path, tmp_path / "aside.db")
    shutil.copyfile(tmp_path / "aside.db", path)
    status, checks = await readiness(client)
    assert status == 503
    assert checks["store"] == {
        "ok": False,
        "detail": f"the ledger file {path} was replaced while lakegate had it open (another "
        "file has its name now): runs written now go to the old file; restart lakegate to "
        "open the new one, or put the original back",
    }
    os.replace(tmp_path / "aside.db", path)
    status, checks = await readiness(client)
    assert (status, checks["store"]) == (200, {"ok": True, "detail": "sqlite"})


async def test_a_ledger_that_cannot_take_a_write_is_not_ready_until_it_can(
    client: Client, tmp_path: Path
) -> None:
    """Another process holds the ledger's write lock: the probe's real write cannot finish,
    and /readyz says so within its own bound instead of hanging; the lock gone, ready."""
    other = await asyncio.to_thread(
        sqlite3.connect, tmp_path / "ledger.db", isolation_level=None, check_same_thread=False
    )
    try:
        await asyncio.to_thread(other.execute, "BEGIN EXCLUSIVE")
        status, checks = await readiness(client)
        assert status == 503
        assert checks["store"] == {
            "ok": False,
            "detail": "a write to the ledger has not finished in 2 s (a stalled disk, or "
            "another process holding the ledger's lock)",
        }
        await asyncio.to_thread(other.execute, "ROLLBACK")
        await until(client, 200, "store", "sqlite")
    finally:
        await asyncio.to_thread(other.close)


def kube_settings(tmp_path: Path, url: str) -> Settings:
    token = tmp_path / "kube-token"
    token.write_text(GATEWAY_TOKEN)
    raw = settings_for(tmp_path).model_dump(mode="json")
    raw["kubernetes"] = {
        "mode": "explicit",
        "host": url,
        "token_file": str(token),
        "unreachable_after_seconds": THRESHOLD,
    }
    # Nothing but readiness's own probe asks the API: no informer, no TokenReview.
    raw["identity"] = {"discover_from_kubernetes": False}
    return Settings.model_validate(raw)


async def test_a_kubernetes_api_gone_past_the_threshold_is_not_ready_until_it_is_back(
    tmp_path: Path,
) -> None:
    api = KubeApiServer(kube_config())
    await api.start()
    port = api.port
    app = create_app(kube_settings(tmp_path, api.url), Overrides(run_poller=False))
    try:
        async with TestClient(TestServer(app)) as client:
            await until(client, 200, "kubernetes_api", "answering")
            await api.stop()
            check = await until(client, 503, "kubernetes_api", "the Kubernetes API has not")
            assert check["ok"] is False
            assert f"cannot connect to 127.0.0.1:{port}" in check["detail"]
            api = KubeApiServer(kube_config(), port=port)
            await api.start()
            await until(client, 200, "kubernetes_api", "answering")
    finally:
        await api.stop()
