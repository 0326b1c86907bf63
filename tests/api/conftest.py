"""An API app on a real loopback socket, wired the way the composition root wires it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.api import setup_api
from gateway.appkeys import CALLERS, METRICS, READINESS, SERVICE, SETTINGS
from gateway.callers import CallerGate
from gateway.metrics import Metrics
from gateway.readiness import Readiness, ReadinessReport
from gateway.settings import CallersSettings, ServerSettings, Settings
from tests.api.fakes import FakeRunService

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Coroutine[Any, Any, Client]]

SPEC = {
    "run_name": "nightly",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Repos/etl/main"}}],
}


async def always_ready() -> ReadinessReport:
    return {"store": (True, "ok")}


def build_app(
    service: FakeRunService,
    *,
    settings: Settings | None = None,
    readiness: Readiness = always_ready,
    metrics: Metrics | None = None,
    client_max_size: int | None = None,
) -> web.Application:
    settings = settings or Settings()
    app = web.Application(client_max_size=client_max_size or settings.server.max_body_bytes)
    setup_api(app, settings)

    async def components(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = service
        app[METRICS] = metrics or Metrics()
        app[READINESS] = readiness
        app[SETTINGS] = settings
        # These tests are about the API, not about who calls it: every caller is let in.
        app[CALLERS] = CallerGate(CallersSettings(methods=("none",)))
        yield

    app.cleanup_ctx.append(components)
    return app


def small_body_settings(max_body_bytes: int = 2048) -> Settings:
    return Settings(server=ServerSettings(max_body_bytes=max_body_bytes))


async def chunked_body(chunks: int, size: int = 1024) -> AsyncIterator[bytes]:
    """A body sent chunked, without Content-Length, so only reading it finds its size."""
    for _ in range(chunks):
        yield b"x" * size


@pytest.fixture
def service() -> FakeRunService:
    return FakeRunService()


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Start apps built by ``build_app`` on port 0; close every one after the test."""
    clients: list[Client] = []

    async def make(service: FakeRunService, **kwargs: Any) -> Client:
        client: Client = TestClient(TestServer(build_app(service, **kwargs)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory, service: FakeRunService) -> Client:
    return await make_client(service)
