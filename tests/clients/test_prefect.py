"""prefect-databricks' submit-and-wait flow, unchanged, over HTTPS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]


async def test_submit_and_wait_flow(drive: Drive, target: str, tmp_path: Path) -> None:
    """The flow submits (nulls for every unset field), waits to SUCCESS, reads task output."""
    env = {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # Prefect starts its own temporary API server, allowed 20 s by default; on a loaded
        # machine (CI's two cores shared) that start alone has taken longer.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }
    outcome = await drive("prefect", "drive_prefect", target, env=env)
    outcome.check(["flow"])
    assert outcome.value("flow") == {"outputs": ["main"], "state": "SUCCESS", "tasks": ["main"]}
