"""Flyte's Databricks connector (flytekitplugins-spark), unchanged, over HTTPS."""

from __future__ import annotations

import uuid

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS
from tests.clients.stack import CANCEL_SUFFIX, ClientStack

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]

STEPS = ["create", "create.run_id", "get.final", "create.second", "delete", "delete.final"]


@pytest.mark.parametrize("compute", ["classic", "serverless"])
async def test_connector_create_get_delete(
    drive: Drive, stack: ClientStack, target: str, compute: str
) -> None:
    """create submits, get follows the run to SUCCEEDED, delete cancels a second one.

    Flyte maps Databricks' CANCELED to its FAILED phase; that the run was cancelled (not
    failed) shows in what reached the emulator.
    """
    name = f"flyte-{uuid.uuid4().hex[:8]}"
    outcome = await drive("flyte", "drive_flyte", target, compute=compute, run_name=name)
    outcome.check(STEPS)
    assert outcome.value("get.final") == "SUCCEEDED"
    assert outcome.value("delete.final") == "FAILED"
    [cancelled] = stack.remote_runs(name + CANCEL_SUFFIX)
    assert cancelled["result_state"] == "CANCELED"
