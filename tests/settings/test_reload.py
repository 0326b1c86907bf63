"""Live reload of the tenants file, updated the way a ConfigMap update looks (symlink swap)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from structlog.testing import capture_logs

from gateway.settings import Settings
from gateway.settings.loading import load_settings
from gateway.settings.reload import TenantsReloader
from tests.support.waiting import until

GATEWAY = """
workspaces:
  prod: {host: "https://adb-1.2.azuredatabricks.net"}
tenants_file: config/tenants.yaml
"""


def tenants(max_active: int, workspace: str = "prod") -> str:
    return f"defaults:\n  workspace: {workspace}\n  quotas:\n    max_active_runs: {max_active}\n"


class ConfigMap:
    """A mounted ConfigMap: tenants.yaml -> ..data/tenants.yaml, ..data -> a versioned dir."""

    def __init__(self, root: Path) -> None:
        self.root = root / "config"
        self.root.mkdir()
        self.version = 0

    def publish(self, text: str) -> None:
        self.version += 1
        versioned = self.root / f"..v{self.version}"
        versioned.mkdir()
        (versioned / "tenants.yaml").write_text(text)
        staged = self.root / "..data_tmp"
        staged.symlink_to(versioned.name)
        os.replace(staged, self.root / "..data")
        link = self.root / "tenants.yaml"
        if not link.is_symlink():
            link.symlink_to("..data/tenants.yaml")


def _stack(tmp_path: Path) -> tuple[Settings, ConfigMap, TenantsReloader, list[bool]]:
    configmap = ConfigMap(tmp_path)
    configmap.publish(tenants(20))
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY)
    settings = load_settings(path, environ={})
    stale: list[bool] = []
    reloader = TenantsReloader(
        settings,
        lambda: load_settings(path, environ={}),
        on_stale=stale.append,
        interval_seconds=0.05,
    )
    return settings, configmap, reloader, stale


async def test_a_limit_lowered_and_raised_in_the_file_takes_effect(tmp_path: Path) -> None:
    """A symlink swap of the file is noticed within seconds; every reader sees the new limit."""
    settings, configmap, reloader, _ = await asyncio.to_thread(_stack, tmp_path)
    watcher = asyncio.create_task(reloader.watch_forever())
    try:
        await asyncio.to_thread(configmap.publish, tenants(3))
        await until(lambda: settings.tenants.quotas("team-a").max_active_runs == 3)
        await asyncio.to_thread(configmap.publish, tenants(40))
        await until(lambda: settings.tenants.quotas("team-a").max_active_runs == 40)
    finally:
        watcher.cancel()


async def test_a_broken_file_is_refused_and_the_old_policy_stays(tmp_path: Path) -> None:
    """An invalid file logs one line naming file and key; the policy and readiness say stale."""
    settings, configmap, reloader, stale = await asyncio.to_thread(_stack, tmp_path)
    await asyncio.to_thread(
        configmap.publish, tenants(5).replace("max_active_runs", "max_actve_runs")
    )
    with capture_logs() as logs:
        assert not await reloader.reload()
    refused = [e for e in logs if e["event"] == "tenants_reload_refused"]
    assert len(refused) == 1
    assert "tenants.yaml" in refused[0]["problem"]
    assert "max_actve_runs" in refused[0]["problem"]
    assert settings.tenants.quotas("team-a").max_active_runs == 20
    assert stale == [True]
    ready, detail = await reloader.check()
    assert ready
    assert "stale" in detail
    await asyncio.to_thread(configmap.publish, tenants(7))
    assert await reloader.reload()
    assert stale == [True, False]
    assert "stale" not in (await reloader.check())[1]


async def test_a_file_naming_an_unlisted_workspace_is_refused(tmp_path: Path) -> None:
    """A policy that would send a namespace to a host off the allow-list never replaces."""
    settings, configmap, reloader, _ = await asyncio.to_thread(_stack, tmp_path)
    await asyncio.to_thread(configmap.publish, tenants(5, workspace="elsewhere"))
    assert not await reloader.reload()
    assert settings.tenants.defaults.workspace == "prod"
    assert reloader.stale is not None
