"""The legacy databricks-cli, unchanged, on Jobs API 2.0 (its default) and with --version=2.1."""

from __future__ import annotations

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS, builds_required
from tests.clients.stack import ClientStack

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]


@pytest.mark.parametrize("version", [None, "2.1"], ids=["api-2.0", "api-2.1"])
async def test_runs_submit_get_list_cancel(
    drive: Drive, stack: ClientStack, target: str, version: str | None
) -> None:
    """runs submit, get, list (JSON) and cancel; the cancelled run ends CANCELED."""
    if stack.targets[target].port80_url is None:
        reason = "the legacy CLI drops the port from its host; port 80 could not be bound here"
        if builds_required():
            pytest.fail(reason)
        pytest.skip(reason)
    outcome = await drive("databricks-cli", "drive_cli", target, version=version)
    outcome.check(["submit", "get", "list", "list.contains", "cancel", "cancel.state"])
    assert outcome.value("get") is True
    assert outcome.value("list.contains") is True
    assert outcome.value("cancel.state") == "CANCELED"
