"""`lakegate serve` as deployed (issue 9): the API over TLS with a certificate from the
configured files, and the metrics listener beside it serving /metrics alone, without a
credential; on the API's listener /metrics needs one."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.e2e.processes import ProcessGroup, free_port, lakegate_command
from tests.test_serving_tls import Pki, pki

__all__ = ["pki"]

API_KEY = "lgk_" + "e2e-metrics-reader-0123456789abcdef"


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[ProcessGroup]:
    processes = ProcessGroup(tmp_path)
    try:
        yield processes
    finally:
        await processes.aclose()


def write_config(tmp_path: Path, pki: Pki, port: int, metrics_port: int) -> Path:
    config = tmp_path / "gateway.yaml"
    raw = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "metrics_host": "127.0.0.1",
            "metrics_port": metrics_port,
            "tls_cert_file": str(pki.cert_file),
            "tls_key_file": str(pki.key_file),
        },
        "store": {"sqlite_path": str(tmp_path / "ledger.db")},
        "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}},
        "callers": {
            "methods": ["api_key"],
            "api_keys": [
                {
                    "name": "ops",
                    "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                    "namespaces": ["team-a"],
                }
            ],
        },
    }
    config.write_text(yaml.safe_dump(raw))
    return config


@pytest.mark.e2e
async def test_serve_speaks_tls_and_serves_metrics_on_their_own_listener(
    tmp_path: Path, pki: Pki, group: ProcessGroup
) -> None:
    port = free_port()
    metrics_port = free_port(besides={port})
    config = write_config(tmp_path, pki, port, metrics_port)
    api, metrics = f"https://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    gateway = group.add(
        "gateway", lakegate_command("serve", "--config", str(config)), probe_url=f"{api}/healthz"
    )
    trusting = aiohttp.TCPConnector(ssl=pki.client_context())
    async with aiohttp.ClientSession(connector=trusting) as https:
        await gateway.start(https)
        async with https.get(f"{api}/metrics") as resp:
            assert resp.status == 401
        async with https.get(f"{api}/metrics", headers={"X-API-Key": API_KEY}) as resp:
            assert resp.status == 200
        async with https.get(f"{metrics}/metrics") as resp:
            assert resp.status == 200
            assert 'route="/metrics",status="401"' in await resp.text()
        async with https.get(f"{metrics}/readyz") as resp:
            assert resp.status == 404
        with pytest.raises(aiohttp.ClientError):
            await https.get(f"http://127.0.0.1:{port}/healthz")
    banner = gateway.tail()
    assert f"serving on https://127.0.0.1:{port}" in banner
    assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in banner
    assert await gateway.terminate() == 0
