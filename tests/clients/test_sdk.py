"""databricks-sdk, unchanged, against the emulator and against lakegate's facade."""

from __future__ import annotations

import uuid

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS
from tests.clients.stack import (
    DIRECT_USER,
    NAMESPACE,
    SHARED_DEFAULT,
    SHARED_NAMESPACES,
    ClientStack,
)

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]

STEPS = [
    "submit", "wait", "wait.state", "get", "get.state", "get.task_run_id", "get_run_output",
    "get_run_output.state", "list", "list.contains", "submit.second", "cancel", "cancel.state",
]  # fmt: skip


async def test_jobs_submit_wait_get_list_output_cancel(
    drive: Drive, stack: ClientStack, target: str
) -> None:
    """The SDK's one-time-run calls all answer, with the states Databricks would give.

    Through lakegate the run reaches Databricks as the API key's namespace's own identity.
    """
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    outcome = await drive("databricks-sdk", "drive_sdk", target, run_name=name)
    outcome.check(STEPS)
    assert outcome.value("wait.state") == "SUCCESS"
    assert outcome.value("get.state") == "SUCCESS"
    assert outcome.value("get_run_output.state") == "SUCCESS"
    assert outcome.value("list.contains") is True
    assert outcome.value("cancel.state") == "CANCELED"
    [remote] = stack.remote_runs(name)
    expected = DIRECT_USER if target == "emulator" else f"{NAMESPACE}@example.com"
    assert remote["principal"] == expected


async def test_one_shared_credential_submits_to_each_namespace_by_host(
    drive: Drive, stack: ClientStack
) -> None:
    """One shared key, clients differing only in host: http://team-00.lakegate.example,
    http://team-01.lakegate.example (each run reaches Databricks as that namespace's identity)
    and lakegate's own address (the key's default namespace). As in the Airflow case, the
    client's HTTP proxy is lakegate itself, standing in for DNS."""
    lakegate = stack.targets["lakegate"]
    address, _, port = lakegate.url.removeprefix("http://").partition(":")
    hosts = {ns: f"http://{stack.host_of(ns)}:{port}" for ns in SHARED_NAMESPACES}
    hosts["default"] = lakegate.url
    env = {"HTTP_PROXY": lakegate.url, "NO_PROXY": address}
    name = f"sdk-shared-{uuid.uuid4().hex[:8]}"
    outcome = await drive(
        "databricks-sdk", "drive_sdk", "lakegate", env=env, hosts=hosts, run_name=name,
        token=stack.shared_key,
    )  # fmt: skip
    outcome.check([f"{label}.{step}" for label in hosts for step in ("submit", "state")])
    expected = {**{ns: ns for ns in SHARED_NAMESPACES}, "default": SHARED_DEFAULT}
    for label, namespace in expected.items():
        assert outcome.value(f"{label}.state") == "SUCCESS"
        [remote] = stack.remote_runs(f"{name}-{label}")
        assert remote["principal"] == stack.principals[namespace], label
