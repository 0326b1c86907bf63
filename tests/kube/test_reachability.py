"""How long the Kubernetes API has not answered (issue 9: /readyz tells the truth), learnt from
the requests the client makes, against the fake API on a real socket."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from gateway.emulator.kubernetes import KubeApiServer
from gateway.errors import KubernetesError
from gateway.kube import KubeClient
from gateway.kube.reachability import Reachability, observe
from tests.fixtures.kube_api import TENANT_A, kube_config
from tests.kube.conftest import KubeFactory, explicit_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_failures_count_from_the_first_one_and_an_answer_clears_them() -> None:
    """Not ready only once every request has failed for the whole threshold."""
    clock = Clock()
    reach = Reachability(clock=clock)
    assert reach.readiness(60) == (True, "not asked yet")
    reach.answered()
    reach.failed("cannot connect to 10.0.0.1:443 (Connection refused)")
    clock.now += 30
    reach.failed("the request timed out")
    ok, detail = reach.readiness(60)
    assert ok
    assert "has not answered for 30 s: the request timed out (not ready after 60 s)" in detail
    clock.now += 31
    assert reach.readiness(60) == (
        False,
        "the Kubernetes API has not answered for 61 s: the request timed out",
    )
    reach.answered()
    assert reach.readiness(60) == (True, "answering")


async def test_requests_of_the_client_report_their_outcome(
    kube_api: KubeApiServer, kube_factory: KubeFactory
) -> None:
    """A refusal is an answer; a connection refused is a failure, named by address."""
    kube = await kube_factory(explicit_config(kube_api.url))
    with pytest.raises(KubernetesError):
        await kube.read_secret(TENANT_A, "no-such-secret")
    assert await kube.readiness(60) == (True, "answering")
    port = kube_api.port
    await kube_api.stop()
    with pytest.raises(KubernetesError):
        await kube.read_secret(TENANT_A, "databricks-token")
    ok, detail = await kube.readiness(60)
    assert ok
    assert f"cannot connect to 127.0.0.1:{port}" in detail


async def wait_for(kube: KubeClient, ready: bool, threshold: float, detail: str = "") -> str:
    """Ask as /readyz does until the answer is ``ready`` with a detail starting ``detail``."""
    async with asyncio.timeout(10):
        while True:
            ok, said = await kube.readiness(threshold)
            if ok is ready and said.startswith(detail):
                return said
            await asyncio.sleep(0.02)


async def test_an_idle_client_probes_and_sees_the_api_go_and_come_back(
    kube_factory: KubeFactory,
) -> None:
    """Nothing else asks the API: readiness's own probe finds it gone past the threshold,
    and back again on the same address."""
    api = KubeApiServer(kube_config())
    await api.start()
    port = api.port
    kube = await kube_factory(explicit_config(api.url))
    try:
        await wait_for(kube, True, 0.4, "answering")
        await api.stop()
        detail = await wait_for(kube, False, 0.4, "the Kubernetes API has not answered for")
        assert f"cannot connect to 127.0.0.1:{port}" in detail
        api = KubeApiServer(kube_config(), port=port)
        await api.start()
        await wait_for(kube, True, 0.4, "answering")
    finally:
        await api.stop()


class ScriptedRest:
    """A REST client whose requests end as scripted: an exception, or a response's status."""

    def __init__(self, *outcomes: Exception | int) -> None:
        self.outcomes = list(outcomes)

    async def request(self, method: str, url: str, **kwargs: object) -> object:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return SimpleNamespace(status=outcome)


async def test_a_5xx_is_a_failure_and_any_other_status_an_answer() -> None:
    """An API server answering 503 (etcd down, say) is not there for the gateway; a 403 is."""
    clock = Clock()
    reach = Reachability(clock=clock)
    api = SimpleNamespace(
        rest_client=ScriptedRest(ApiException(status=503, reason="Service Unavailable"), 403, 500)
    )
    observe(api, reach)
    with pytest.raises(ApiException):
        await api.rest_client.request("GET", "/api/v1/namespaces")
    assert "HTTP 503 Service Unavailable" in reach.readiness(60)[1]
    await api.rest_client.request("GET", "/version")
    assert reach.readiness(60) == (True, "answering")
    await api.rest_client.request("GET", "/api/v1/watch", _preload_content=False)
    clock.now += 60
    assert reach.readiness(60) == (False, "the Kubernetes API has not answered for 60 s: HTTP 500")
