"""SIGHUP to ``lakegate serve`` reloads the tenant policy: limits at once, identities too.

The tenants are inline in gateway.yaml, so nothing but the signal can bring a change in (the
file watcher follows ``tenants_file`` only). A changed identity takes effect at the next
submission although the namespace's resolution was cached moments before (its TTL is 30 s):
the reload flushes it. A broken file is refused, the running policy stays, /readyz says stale.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli.client import LakegateClient
from tests.e2e.specs import spec
from tests.e2e.test_crash_safety import (
    GENEROUS_QUOTAS,
    ProcessStack,
    StackStarter,
    process_stack,
)
from tests.fixtures.gateway import namespace_name

__all__ = ["process_stack"]  # the fixture, shared with the crash-safety tests


async def _until(check: Callable[[], Any], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.1)


async def _principal_of(stack: ProcessStack, client: LakegateClient, ns: str, run_id: int) -> str:
    """Who the emulated workspace says created the run, once the gateway submitted it."""
    found: dict[str, Any] = {}

    async def submitted() -> bool:
        found.update(await client.get(ns, run_id))
        return found.get("databricks_run_id") is not None

    await _until(submitted, f"run {run_id} submitted")
    remote = {r["run_id"]: r for r in await stack.emulator_runs()}
    return str(remote[found["databricks_run_id"]]["principal"])


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


async def _tenants_detail(stack: ProcessStack) -> str:
    async with stack.session.get(f"{stack.gateway_url}/readyz") as response:
        body = await response.json()
    return str(body["checks"]["tenants"]["detail"])


@pytest.mark.e2e
async def test_sighup_reloads_limits_and_identities_and_refuses_a_broken_file(
    process_stack: StackStarter, tmp_path: Path
) -> None:
    """After SIGHUP the new limit shows and the next run goes as the new identity; a broken
    file then changes nothing but /readyz, and a fixed one is taken again."""
    stack = await process_stack(2)
    ns, other = namespace_name(0), namespace_name(1)
    config = tmp_path / "gateway.yaml"

    async with stack.client() as client:

        async def limit_is(value: int) -> bool:
            return bool((await client.quota(ns))["limits"]["max_active_runs"] == value)

        before = (await client.submit(ns, spec("before", seconds=0.5))).run
        assert await _principal_of(stack, client, ns, before["id"]) == stack.principals[ns]

        def move(raw: dict[str, Any]) -> None:
            tenants = raw["tenants"]["namespaces"]
            tenants[ns] = {
                "identity": tenants[other]["identity"],
                "quotas": {**GENEROUS_QUOTAS, "max_active_runs": 3},
            }

        await asyncio.to_thread(_rewrite, config, move)
        stack.gateway.send_signal(signal.SIGHUP)
        await _until(lambda: limit_is(3), "max_active_runs 3 after SIGHUP")
        after = (await client.submit(ns, spec("after", seconds=0.5))).run
        assert await _principal_of(stack, client, ns, after["id"]) == stack.principals[other]

        def spoil(raw: dict[str, Any]) -> None:
            raw["tenants"]["namespaces"][ns]["quotas"]["max_active_runs"] = "many"

        await asyncio.to_thread(_rewrite, config, spoil)
        stack.gateway.send_signal(signal.SIGHUP)

        async def stale() -> bool:
            return "stale" in await _tenants_detail(stack)

        await _until(stale, "/readyz saying the tenant policy is stale")
        assert await limit_is(3)
        assert "max_active_runs" in await _tenants_detail(stack)

        def mend(raw: dict[str, Any]) -> None:
            raw["tenants"]["namespaces"][ns]["quotas"]["max_active_runs"] = 4

        await asyncio.to_thread(_rewrite, config, mend)
        stack.gateway.send_signal(signal.SIGHUP)
        await _until(lambda: limit_is(4), "max_active_runs 4 after the fix")
        assert "stale" not in await _tenants_detail(stack)
    assert stack.gateway.running
