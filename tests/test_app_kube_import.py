"""``kubernetes.mode: off`` never loads kubernetes-asyncio (about 40 MiB of RSS): it is
imported only by a gateway that is configured to talk to Kubernetes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SERVE_AND_REPORT = textwrap.dedent(
    """
    import asyncio, json, sys
    from aiohttp.test_utils import TestClient, TestServer
    from gateway.app import Overrides, create_app
    from gateway.settings import Settings

    settings = Settings.model_validate(json.loads(sys.argv[1]))

    async def main() -> None:
        app = create_app(settings, Overrides(poll_idle_seconds=0.05))
        async with TestClient(TestServer(app)) as client:
            for path in ("/readyz", "/v1/namespaces/team-a/runs", "/metrics"):
                (await client.get(path)).release()
            await client.post("/v1/namespaces/team-a/runs", json={"spec": {}})

    asyncio.run(main())
    print("kubernetes_asyncio" in sys.modules)
    """
)


def loads_kubernetes(settings: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_REPORT, settings],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1] == "True"


def test_mode_off_serves_without_importing_kubernetes_asyncio(tmp_path: Path) -> None:
    """A gateway with Kubernetes off starts, answers, and never imports the client."""
    settings = (
        '{"store": {"sqlite_path": "%s"}, "callers": {"methods": ["none"]},'
        ' "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}}}'
    ) % (tmp_path / "ledger.db")
    assert loads_kubernetes(settings) is False
