"""The legacy databricks-cli, unchanged, on Jobs API 2.0 (its default) and with --version=2.1."""

from __future__ import annotations

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS, builds_required
from tests.clients.stack import ClientStack

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]


VERSIONS = pytest.mark.parametrize("version", [None, "2.1"], ids=["api-2.0", "api-2.1"])


def _needs_port_80(stack: ClientStack, target: str) -> None:
    if stack.targets[target].port80_url is None:
        reason = "the legacy CLI drops the port from its host; port 80 could not be bound here"
        if builds_required():
            pytest.fail(reason)
        pytest.skip(reason)


@VERSIONS
async def test_runs_submit_get_list_cancel(
    drive: Drive, stack: ClientStack, target: str, version: str | None
) -> None:
    """runs submit, get, list (JSON) and cancel; the cancelled run ends CANCELED."""
    _needs_port_80(stack, target)
    outcome = await drive("databricks-cli", "drive_cli", target, version=version)
    outcome.check(["submit", "get", "list", "list.contains", "cancel", "cancel.state"])
    assert outcome.value("get") is True
    assert outcome.value("list.contains") is True
    assert outcome.value("cancel.state") == "CANCELED"


@VERSIONS
async def test_runs_get_shows_every_task_of_a_250_task_run(
    drive: Drive, stack: ClientStack, target: str, version: str | None
) -> None:
    """2.0 and 2.1 have no task pages: runs get shows all 250 tasks, in order, though
    lakegate reads the run from Databricks at 2.2, 100 tasks a page."""
    _needs_port_80(stack, target)
    outcome = await drive("databricks-cli", "drive_cli", target, version=version, tasks=250)
    outcome.check(["submit", "get", "get.task_keys"])
    assert outcome.value("get.task_keys") == [f"t{i:03d}" for i in range(250)]
