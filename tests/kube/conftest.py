"""Fixtures for the Kubernetes edge: clients of the fake API (tests.fixtures.kube_api)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import KubeClient, KubeConfig
from tests.fixtures.kube_api import GATEWAY_TOKEN

# Short enough that a hung request fails the test quickly, long enough for a loaded CI box.
REQUEST_TIMEOUT = (2.0, 5.0)

KubeFactory = Callable[..., Awaitable[KubeClient]]


def explicit_config(url: str, token: str = GATEWAY_TOKEN) -> KubeConfig:
    return KubeConfig(mode="explicit", host=url, token=token, request_timeout=REQUEST_TIMEOUT)


@pytest.fixture
async def kube_factory() -> AsyncIterator[KubeFactory]:
    """Open KubeClients for any config; each is closed when the test ends."""
    opened: list[KubeClient] = []

    async def open_client(config: KubeConfig) -> KubeClient:
        client = await KubeClient.open(config)
        opened.append(client)
        return client

    try:
        yield open_client
    finally:
        for client in reversed(opened):
            await client.aclose()


@pytest.fixture
async def kube(kube_api: KubeApiServer, kube_factory: KubeFactory) -> KubeClient:
    """A KubeClient for the fake API, authenticated as the gateway."""
    return await kube_factory(explicit_config(kube_api.url))
