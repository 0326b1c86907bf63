"""Airflow's Databricks provider, unchanged: hook, both operator shapes, deferrable, notebook."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.clients.conftest import Drive
from tests.clients.envs import BUILD_TIMEOUT_SECONDS
from tests.clients.runner import Outcome
from tests.clients.stack import SHARED_DEFAULT, SHARED_NAMESPACES, ClientStack

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)]


AIRFLOW_SETTINGS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
}


def _databricks_connection(host: str, port: str, token: str) -> str:
    connection = {
        "conn_type": "databricks",
        "host": host,
        "port": int(port),
        "schema": "http",
        "password": token,
    }
    return json.dumps(connection)


def _connection(stack: ClientStack, target: str) -> dict[str, str]:
    chosen = stack.targets[target]
    host, _, port = chosen.url.removeprefix("http://").partition(":")
    return {
        "AIRFLOW_CONN_LAKEGATE": _databricks_connection(host, port, chosen.token),
        **AIRFLOW_SETTINGS,
    }


async def _airflow(drive: Drive, stack: ClientStack, target: str, scenario: str) -> Outcome:
    env = _connection(stack, target)
    return await drive("airflow", "drive_airflow", target, env=env, scenario=scenario)


async def test_hook_submit_get_cancel(drive: Drive, stack: ClientStack, target: str) -> None:
    """DatabricksHook's synchronous calls: submit_run, get_run, get_run_state, cancel_run."""
    outcome = await _airflow(drive, stack, target, "hook_sync")
    outcome.check(["submit_run", "get_run", "get_run_state", "cancel_run", "cancelled"])
    assert outcome.value("get_run") is True
    assert outcome.value("cancelled") == "CANCELED"


async def test_hook_async_reads_with_a_json_body(
    drive: Drive, stack: ClientStack, target: str
) -> None:
    """a_get_run_state, a_get_run and a_get_run_output send run_id as a GET's JSON body."""
    outcome = await _airflow(drive, stack, target, "hook_async")
    outcome.check(["submit_run", "a_get_run_state", "a_get_run", "a_get_run_output", "cancel_run"])
    assert outcome.value("a_get_run") is True
    assert outcome.value("a_get_run_output") == "True"


@pytest.mark.parametrize("shape", ["tasks", "single"])
async def test_submit_run_operator(
    drive: Drive, stack: ClientStack, target: str, shape: str
) -> None:
    """DatabricksSubmitRunOperator with tasks[] and with the classic single-task body."""
    outcome = await _airflow(drive, stack, target, f"operator_{shape}")
    outcome.check(["execute", "run_id", "result"])
    assert outcome.value("result") == "SUCCESS"


async def test_deferrable_operator_and_its_trigger(
    drive: Drive, stack: ClientStack, target: str
) -> None:
    """deferrable=True defers; its trigger polls (async hook) to the end; then execute_complete."""
    outcome = await _airflow(drive, stack, target, "deferrable")
    outcome.check(["execute.defers", "trigger", "trigger.state", "execute_complete"])
    assert json.loads(outcome.value("trigger.state"))["result_state"] == "SUCCESS"


async def test_notebook_operator(drive: Drive, stack: ClientStack, target: str) -> None:
    """DatabricksNotebookOperator submits the single-task shape and follows its task."""
    outcome = await _airflow(drive, stack, target, "notebook")
    outcome.check(["execute", "run_id", "result"])
    assert outcome.value("result") == "SUCCESS"


async def test_get_run_pages_through_a_250_task_run(
    drive: Drive, stack: ClientStack, target: str
) -> None:
    """get_run and a_get_run (API 2.2) follow next_page_token to all 250 tasks, in order."""
    env = _connection(stack, target)
    outcome = await drive("airflow", "drive_airflow", target, env=env, scenario="long", tasks=250)
    outcome.check(["submit_run", "get_run", "a_get_run"])
    keys = [f"t{i:03d}" for i in range(250)]
    assert outcome.value("get_run") == keys
    assert outcome.value("a_get_run") == keys


async def test_one_shared_credential_submits_to_each_namespace_by_host(
    drive: Drive, stack: ClientStack
) -> None:
    """Three connections with one shared key, differing only in host: team-00's and
    team-01's host names (``{namespace}.lakegate.example``) and lakegate's own address. Each
    operator's run reaches Databricks as the identity of the namespace its host names, the
    plain address as the key's default namespace.

    No DNS here: the client's HTTP proxy is lakegate itself, so a request for
    http://team-00.lakegate.example:<port>/ reaches lakegate with that Host, as DNS or a
    per-namespace Service would route it; the connections are what a deployment writes.
    """
    lakegate = stack.targets["lakegate"]
    address, _, port = lakegate.url.removeprefix("http://").partition(":")
    hosts = {
        namespace.replace("-", "_"): stack.host_of(namespace) for namespace in SHARED_NAMESPACES
    }
    hosts["by_default"] = address
    env = {
        f"AIRFLOW_CONN_{conn.upper()}": _databricks_connection(host, port, stack.shared_key)
        for conn, host in hosts.items()
    }
    env.update(AIRFLOW_SETTINGS, HTTP_PROXY=lakegate.url, NO_PROXY=address)
    name = f"shared-{uuid.uuid4().hex[:8]}"
    outcome = await drive(
        "airflow", "drive_airflow", "lakegate", env=env, scenario="shared", run_name=name,
        connections=list(hosts),
    )  # fmt: skip
    outcome.check([f"{conn}.{step}" for conn in hosts for step in ("execute", "result")])
    expected = {**dict(zip(hosts, SHARED_NAMESPACES, strict=False)), "by_default": SHARED_DEFAULT}
    for conn, namespace in expected.items():
        assert outcome.value(f"{conn}.result") == "SUCCESS"
        [remote] = stack.remote_runs(f"{name}-{conn}")
        assert remote["principal"] == stack.principals[namespace], conn


async def test_deferrable_operator_by_host(drive: Drive, stack: ClientStack) -> None:
    """A deferrable DatabricksSubmitRunOperator whose connection's host is team-01's host
    name, with the shared key: the submit (sync hook) and every poll of its trigger (async
    hook) reach lakegate by that name, and the run is team-01's.

    The async hook ignores HTTP_PROXY, so here the name itself resolves to loopback inside
    the driver's process (``drivers/_names.py``), as DNS would route it; the client is
    unchanged. team-01 is also the key's default, so team-00's host name is driven too:
    there a submit or a poll that lost its host would find the wrong namespace.
    """
    lakegate = stack.targets["lakegate"]
    _, _, port = lakegate.url.removeprefix("http://").partition(":")
    for namespace in SHARED_NAMESPACES:
        host = stack.host_of(namespace)
        env = {
            "AIRFLOW_CONN_LAKEGATE": _databricks_connection(host, port, stack.shared_key),
            "LAKEGATE_LOOPBACK_SUFFIX": ".lakegate.example",
            **AIRFLOW_SETTINGS,
        }
        name = f"deferred-{namespace}-{uuid.uuid4().hex[:8]}"
        outcome = await drive(
            "airflow", "drive_airflow", "lakegate", env=env, scenario="deferrable", run_name=name
        )
        outcome.check(["execute.defers", "trigger", "trigger.state", "execute_complete"])
        assert json.loads(outcome.value("trigger.state"))["result_state"] == "SUCCESS"
        [remote] = stack.remote_runs(name)
        assert remote["principal"] == stack.principals[namespace], namespace
