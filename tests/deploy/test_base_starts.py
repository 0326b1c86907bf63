"""The shipped deploy/base configuration, as the ConfigMap mounts it, starts and serves with
no optional Secret: the example tenant whose variable is missing is refused alone, clearly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.appkeys import METRICS
from gateway.emulator.kubernetes import KubeApiServer
from gateway.settings import load_settings
from tests.deploy.manifests import ROOT
from tests.fixtures.kube_api import GATEWAY_TOKEN, KubeApiFactory, kube_config

BASE = ROOT / "deploy" / "base"
TENANT = "team-a"
VARIABLE = "TEAM_A_DATABRICKS_CLIENT_SECRET"


def _metrics(client: TestClient) -> str:
    # The registry /metrics serves, read in-process: whether /metrics asks this caller for a
    # credential is the API's business, not the deploy's.
    return client.server.app[METRICS].render().decode()


@pytest.fixture
async def base_gateway(
    kube_api_factory: KubeApiFactory, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, KubeApiServer]]:
    """deploy/base/gateway.yaml and tenants.yaml, unchanged but for what the pod would get
    from its cluster (the API server, its token) and the ledger's volume."""
    kube = await kube_api_factory(
        kube_config(namespaces={TENANT: {"service_accounts": {"runner": {}}}})
    )
    token_file = tmp_path / "token"
    token_file.write_text(GATEWAY_TOKEN, encoding="utf-8")
    cluster = {
        "LAKEGATE_KUBERNETES__MODE": "explicit",
        "LAKEGATE_KUBERNETES__HOST": kube.url,
        "LAKEGATE_KUBERNETES__TOKEN_FILE": str(token_file),
        "LAKEGATE_STORE__SQLITE_PATH": str(tmp_path / "lakegate.db"),
    }
    settings = await asyncio.to_thread(load_settings, BASE / "gateway.yaml", environ=cluster)
    # No lakegate-tenant-credentials Secret: the environment holds none of its variables.
    app = create_app(settings, Overrides(environ={}, run_poller=False, run_dispatcher=False))
    async with TestClient(TestServer(app)) as client:
        yield client, kube


async def test_the_base_starts_and_is_ready_with_the_tenant_refused_as_a_detail(
    base_gateway: tuple[TestClient, KubeApiServer],
) -> None:
    """/readyz is 200; its tenant_policies detail names the tenant, the key and the variable."""
    client, _ = base_gateway
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    detail = body["checks"]["tenant_policies"]
    assert detail["ok"] is True
    assert f"namespace '{TENANT}' is refused" in detail["detail"]
    assert f"tenants.namespaces.{TENANT}.identity.client_secret_env" in detail["detail"]
    assert VARIABLE in detail["detail"]


async def test_the_refused_tenant_gets_a_422_naming_it_and_the_cause(
    base_gateway: tuple[TestClient, KubeApiServer],
) -> None:
    """A submission for the refused tenant, by its own ServiceAccount, is a 422 problem."""
    client, kube = base_gateway
    token = kube.mint_token(TENANT, "runner", audiences=["lakegate"])
    resp = await client.post(
        f"/v1/namespaces/{TENANT}/runs",
        json={"spec": {"run_name": "r", "tasks": [{"task_key": "t", "spark_python_task": {}}]}},
        headers={"Authorization": f"Bearer {token}"},
    )
    problem = await resp.json()
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert TENANT in problem["detail"]
    assert VARIABLE in problem["detail"]
    text = _metrics(client)
    refusal = f'namespace="{TENANT}",reason="identity-misconfigured"'
    assert f"lakegate_refusals_total{{{refusal}}} 1.0" in text


async def test_the_refused_tenant_is_counted_in_metrics(
    base_gateway: tuple[TestClient, KubeApiServer],
) -> None:
    """lakegate_tenants_refused names the tenant and the reason."""
    client, _ = base_gateway
    text = _metrics(client)
    assert f'lakegate_tenants_refused{{namespace="{TENANT}",reason="environment"}} 1.0' in text
