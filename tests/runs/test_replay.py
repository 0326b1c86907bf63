"""An idempotent replay over HTTP, through the composition root, while Kubernetes is away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.errors import KubernetesError
from gateway.settings import Settings
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.runs.conftest import SPEC, Identities

RUNS = "/v1/namespaces/team-a/runs"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def identities(databricks_emulator: DatabricksEmulator) -> Identities:
    return Identities(databricks_emulator.url, databricks_emulator.pat)


@pytest.fixture
async def client(
    tmp_path: Path, databricks_emulator: DatabricksEmulator, identities: Identities
) -> AsyncIterator[Client]:
    settings = Settings.model_validate(
        {
            "store": {"sqlite_path": str(tmp_path / "ledger.db")},
            "workspaces": {"emulated": {"host": databricks_emulator.url}},
            "callers": {"methods": ["none"]},
        }
    )

    def resolver(session: aiohttp.ClientSession) -> Identities:
        return identities

    app = create_app(settings, Overrides(identities=resolver, environ={}, run_poller=False))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_a_replay_is_answered_while_kubernetes_is_away(
    client: Client, identities: Identities
) -> None:
    """Same Idempotency-Key and body: 200 with the same run though resolving now fails."""
    headers = {"Idempotency-Key": "nightly-2026-01-01"}
    first = await client.post(RUNS, json={"spec": SPEC}, headers=headers)
    assert first.status == 201
    identities.failures.append(KubernetesError("connection refused"))
    again = await client.post(RUNS, json={"spec": SPEC}, headers=headers)
    assert again.status == 200
    assert (await again.json())["id"] == (await first.json())["id"]
    assert len(identities.calls) == 1
    assert identities.failures  # the replay never asked for an identity


async def test_a_new_request_still_needs_its_identity(
    client: Client, identities: Identities
) -> None:
    """Without a key to replay, the outage is the answer: nothing is accepted blind."""
    assert (await client.post(RUNS, json={"spec": SPEC})).status == 201
    identities.failures.append(KubernetesError("connection refused"))
    refused = await client.post(RUNS, json={"spec": SPEC})
    assert refused.status == 502
    assert not identities.failures
