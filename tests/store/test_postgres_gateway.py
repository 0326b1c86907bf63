"""The gateway on a PostgreSQL ledger that goes away: 503 with Retry-After for writes, a clear
503 for reads it cannot serve, /readyz not ready, and back by itself when the database is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.fixtures.gateway import GatewayStack, StackFactory, namespace_name
from tests.store.pg import POSTGRES_DSN, OutageProxy, terminate_connections

pytestmark = pytest.mark.postgres

SPEC: dict[str, Any] = {
    "run_name": "etl",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Shared/etl"}}],
}
NS = namespace_name(0)


@pytest.fixture
async def proxy() -> AsyncIterator[OutageProxy]:
    assert POSTGRES_DSN is not None
    server = urlsplit(POSTGRES_DSN)
    relay = OutageProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await relay.restore()
    yield relay
    await relay.cut()


async def _stack(factory: StackFactory, dsn: str) -> GatewayStack:
    store = {"backend": "postgres", "dsn": dsn, "connect_timeout_seconds": 1}
    return await factory(namespaces=1, gateway={"store": store})


async def _submit(stack: GatewayStack, key: str) -> aiohttp.ClientResponse:
    async with stack.session.post(
        f"{stack.url}/v1/namespaces/{NS}/runs",
        json={"spec": SPEC},
        headers={"Idempotency-Key": key},
    ) as resp:
        await resp.read()
        return resp


async def _ready(stack: GatewayStack) -> tuple[int, dict[str, Any]]:
    async with stack.session.get(f"{stack.url}/readyz") as resp:
        return resp.status, await resp.json()


# pg_dsn comes first in each test's arguments: its schema is made before the gateway starts
# and dropped after the gateway stops.
async def test_a_database_outage_is_503_not_ready_and_heals(
    pg_dsn: str, proxy: OutageProxy, gateway_stack_factory: StackFactory
) -> None:
    """Cut the database off: writes 503 + Retry-After, reads 503, /readyz 503; then back."""
    stack = await _stack(gateway_stack_factory, proxy.dsn(pg_dsn))
    first = await _submit(stack, "before")
    assert first.status in (201, 202)
    assert (await _ready(stack))[0] == 200

    await proxy.cut()
    refused = await _submit(stack, "during")
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    async with stack.session.get(f"{stack.url}/v1/namespaces/{NS}/runs") as resp:
        assert resp.status == 503
        assert "cannot be reached" in (await resp.json())["detail"]
    status, body = await _ready(stack)
    assert status == 503
    assert body["checks"]["store"]["ok"] is False

    await proxy.restore()
    for _ in range(50):
        if (await _ready(stack))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await _ready(stack))[0] == 200
    assert (await _submit(stack, "after")).status in (201, 202)


async def test_killed_connections_lose_and_double_no_run(
    pg_dsn: str, gateway_stack_factory: StackFactory
) -> None:
    """Keyed submissions retried on 503 while pg_terminate_backend kills the gateway's
    connections: every key ends with one run, and every 2xx answer names that run."""
    stack = await _stack(gateway_stack_factory, pg_dsn)
    accepted: dict[str, int] = {}
    refused = 0

    async def submit(index: int) -> None:
        nonlocal refused
        key = f"key-{index}"
        while True:
            async with stack.session.post(
                f"{stack.url}/v1/namespaces/{NS}/runs",
                json={"spec": SPEC},
                headers={"Idempotency-Key": key},
            ) as resp:
                if resp.status == 503:
                    refused += 1
                    assert "Retry-After" in resp.headers
                    await asyncio.sleep(0.02)
                    continue
                assert resp.status in (200, 201, 202), await resp.text()
                accepted[key] = (await resp.json())["id"]
                return

    async def killer() -> None:
        for _ in range(6):
            await asyncio.sleep(0.05)
            await terminate_connections(pg_dsn)

    await asyncio.gather(killer(), *(submit(i) for i in range(60)))
    assert len(accepted) == 60
    async with stack.session.get(
        f"{stack.url}/v1/namespaces/{NS}/runs", params={"limit": "200"}
    ) as resp:
        assert resp.status == 200
        listed = await resp.json()
    ids = sorted(run["id"] for run in listed["runs"])
    assert ids == sorted(accepted.values())
    print(f"submissions answered 503 while connections died: {refused}")
