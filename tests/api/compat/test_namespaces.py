"""Choosing a namespace with an unchanged client: by the Host it called, or the credential's
default. One shared API key is granted two namespaces; the official databricks-sdk, over real
sockets, submits to each without any lakegate header."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from databricks.sdk.errors import NotFound, PermissionDenied

from gateway import errors
from gateway.appkeys import RUNS
from gateway.callers.api_keys import sha256_hex
from tests.api.compat.conftest import in_thread
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack, StackFactory

KEY = "lgk-shared-scheduler-0123456789"
PATTERN = "{namespace}.lakegate.example"
TEAM_A, TEAM_B, TEAM_C = "team-00", "team-01", "team-02"


@dataclass
class Shared:
    gateway: GatewayStack

    def sdk(self, host: str) -> Any:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        config = Config(
            host=host, token=KEY, auth_type="pat", retry_timeout_seconds=10, http_timeout_seconds=10
        )
        return WorkspaceClient(config=config)

    def submit(self, host: str, name: str) -> int:
        from databricks.sdk.service import jobs

        tasks = [jobs.SubmitTask.from_dict(t) for t in spec(name)["tasks"]]
        waiter = self.sdk(host).jobs.submit(run_name=name, tasks=tasks)
        run_id = waiter.run_id
        assert run_id is not None
        return run_id


@pytest.fixture
async def shared(gateway_stack_factory: StackFactory) -> Shared:
    callers = {
        "methods": ["api_key"],
        "namespace_host_pattern": PATTERN,
        "api_keys": [
            {
                "name": "scheduler",
                "sha256": sha256_hex(KEY),
                "namespaces": [TEAM_A, TEAM_B],
                "default_namespace": TEAM_B,
            }
        ],
    }
    return Shared(await gateway_stack_factory(namespaces=3, gateway={"callers": callers}))


@pytest.fixture
def via_gateway(shared: Shared) -> Iterator[None]:
    """Send the SDK's plain-http requests through lakegate as their proxy: a request for
    http://team-00.lakegate.example/... then reaches lakegate with that Host, as DNS or a
    per-namespace Service would route it, with no name to resolve on this machine."""
    saved = {name: os.environ.get(name) for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY")}
    os.environ["HTTP_PROXY"] = os.environ["http_proxy"] = shared.gateway.url
    os.environ.pop("NO_PROXY", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def owner(stack: GatewayStack, run_id: int, name: str) -> str:
    """The namespace whose ledger holds ``run_id``, and whose principal Databricks saw."""
    [remote] = [r for r in stack.emulator.runs() if r["run_name"] == name]
    for namespace in (TEAM_A, TEAM_B, TEAM_C):
        try:
            run = await stack.app[RUNS].get(namespace, run_id)
        except errors.NotFound:
            continue
        assert remote["principal"] == stack.principal(namespace)
        assert remote["run_id"] == run.databricks_run_id
        return namespace
    raise AssertionError(f"run {run_id} is in no namespace")


async def test_the_credential_s_default_namespace_takes_a_plain_client(shared: Shared) -> None:
    """The SDK with the gateway's own address and the shared key submits to its default."""
    run_id = await in_thread(lambda: shared.submit(shared.gateway.url, "by-default"))
    assert await owner(shared.gateway, run_id, "by-default") == TEAM_B


@pytest.mark.usefixtures("via_gateway")
async def test_the_host_a_client_called_chooses_among_its_namespaces(shared: Shared) -> None:
    """http://team-00.lakegate.example and http://team-01.lakegate.example, the same key:
    each run lands in the namespace its host names."""
    first = await in_thread(lambda: shared.submit("http://team-00.lakegate.example", "host-a"))
    second = await in_thread(lambda: shared.submit("http://team-01.lakegate.example", "host-b"))
    assert await owner(shared.gateway, first, "host-a") == TEAM_A
    assert await owner(shared.gateway, second, "host-b") == TEAM_B
    # The run is read back through the same host; the other namespace's host cannot see it.
    got = await in_thread(lambda: shared.sdk("http://team-00.lakegate.example").jobs.get_run(first))
    assert got.run_id == first
    with pytest.raises(NotFound):
        await in_thread(lambda: shared.sdk("http://team-01.lakegate.example").jobs.get_run(first))


@pytest.mark.usefixtures("via_gateway")
async def test_a_host_naming_a_namespace_the_caller_lacks_is_refused(shared: Shared) -> None:
    """The Host only chooses: team-02 is not the key's, so the SDK gets PermissionDenied and
    nothing reaches Databricks."""
    with pytest.raises(PermissionDenied):
        await in_thread(lambda: shared.submit("http://team-02.lakegate.example", "host-c"))
    assert [r for r in shared.gateway.emulator.runs() if r["run_name"] == "host-c"] == []
