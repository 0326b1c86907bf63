"""Request ids, log context, the access log and HTTP metrics."""

from __future__ import annotations

import re

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler, Middleware
from structlog.testing import capture_logs

from gateway.api.middlewares import owner_only
from gateway.metrics import Metrics
from gateway.model import RunRecord
from tests.api.conftest import SPEC, Client, ClientFactory
from tests.api.fakes import FakeRunService

RUNS = "/v1/namespaces/team-a/runs"
_GENERATED = re.compile(r"^[0-9a-f]{32}$")


class ContextRecordingService(FakeRunService):
    """Remembers the structlog context the service was called in."""

    context: dict[str, object] | None = None

    async def get(self, namespace: str, run_id: int) -> RunRecord:
        self.context = structlog.contextvars.get_contextvars()
        return await super().get(namespace, run_id)


async def test_sane_request_id_is_echoed(client: Client) -> None:
    """A caller's X-Request-Id of safe characters comes back unchanged."""
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123_x.y"})
    assert resp.headers["X-Request-Id"] == "abc-123_x.y"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "ünï"])
async def test_missing_or_unsafe_request_id_is_replaced(client: Client, given: str | None) -> None:
    """Without a safe X-Request-Id the gateway generates one."""
    headers = {} if given is None else {"X-Request-Id": given}
    resp = await client.get("/healthz", headers=headers)
    assert _GENERATED.match(resp.headers["X-Request-Id"])


async def test_error_responses_carry_the_request_id(client: Client) -> None:
    """Problem responses echo the request id in the header and the body."""
    resp = await client.get(f"{RUNS}/1", headers={"X-Request-Id": "req-1"})
    assert resp.status == 404
    assert resp.headers["X-Request-Id"] == "req-1"
    assert (await resp.json())["request_id"] == "req-1"


async def test_unknown_route_responses_carry_a_request_id(client: Client) -> None:
    """Even an unmatched path gets a request id header and body field."""
    resp = await client.get("/nope")
    body = await resp.json(content_type=None)
    assert body["request_id"] == resp.headers["X-Request-Id"]


async def test_service_runs_with_request_id_and_namespace_bound(
    make_client: ClientFactory,
) -> None:
    """Logs written by the service carry the request id and the namespace."""
    service = ContextRecordingService()
    client = await make_client(service)
    await client.get(f"{RUNS}/1", headers={"X-Request-Id": "req-7"})
    assert service.context == {"request_id": "req-7", "namespace": "team-a"}


async def test_access_log_carries_request_id_and_only_a_valid_namespace(client: Client) -> None:
    """The bound context reaches log events; a namespace that is not a name is left out."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await client.get(f"{RUNS}/1", headers={"X-Request-Id": "req-8"})
        await client.get("/v1/namespaces/NOT_VALID/runs/1", headers={"X-Request-Id": "req-9"})
    good, bad = [e for e in logs if e["event"] == "http_request"]
    assert (good["request_id"], good["namespace"]) == ("req-8", "team-a")
    assert bad["request_id"] == "req-9"
    assert "namespace" not in bad


async def test_one_access_log_event_per_request_without_headers(client: Client) -> None:
    """Each request logs one http_request event with the route template, never headers."""
    with capture_logs() as logs:
        await client.post(
            RUNS, json={"spec": SPEC}, headers={"Authorization": "Bearer s3cr3t-value"}
        )
    [event] = [e for e in logs if e["event"] == "http_request"]
    assert event["method"] == "POST"
    assert event["route"] == "/v1/namespaces/{namespace}/runs"
    assert event["status"] == 202
    assert event["duration_ms"] >= 0
    assert "s3cr3t-value" not in repr(logs)


async def test_probes_and_scrapes_are_logged_at_debug(client: Client) -> None:
    """Successful /healthz, /readyz and /metrics requests log at debug, not info."""
    with capture_logs() as logs:
        await client.get("/healthz")
        await client.get("/metrics")
        await client.get(f"{RUNS}/1")
    levels = {e["route"]: e["log_level"] for e in logs if e["event"] == "http_request"}
    assert levels["/healthz"] == "debug"
    assert levels["/metrics"] == "debug"
    assert levels["/v1/namespaces/{namespace}/runs/{run_id}"] == "info"


async def test_access_log_names_the_problem_of_an_error(client: Client) -> None:
    """An error's access log event carries its problem type slug."""
    with capture_logs() as logs:
        await client.get(f"{RUNS}/abc")
    [event] = [e for e in logs if e["event"] == "http_request"]
    assert event["status"] == 400
    assert event["problem"] == "invalid-request"


async def test_metrics_are_labelled_by_route_template(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """Requests are counted by route template, and unmatched paths share one label."""
    metrics = Metrics()
    client = await make_client(service, metrics=metrics)
    await client.get(f"{RUNS}/1")
    await client.get(f"{RUNS}/2")
    await client.get("/random/path/1")
    await client.request("PROPFIND", "/healthz")
    sample = metrics.registry.get_sample_value
    route = "/v1/namespaces/{namespace}/runs/{run_id}"
    labels = {"method": "GET", "route": route, "status": "404"}
    assert sample("lakegate_http_requests_total", labels) == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert sample("lakegate_http_requests_total", unmatched) == 1
    other = {"method": "OTHER", "route": "unmatched", "status": "405"}
    assert sample("lakegate_http_requests_total", other) == 1
    assert sample("lakegate_http_request_seconds_count", {"method": "GET", "route": route}) == 2


async def test_owner_only_runs_in_the_application_that_serves_the_route() -> None:
    """A guard on a parent and its sub-application runs once a request, in the route's own."""
    seen: list[str] = []

    def guard(name: str) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            seen.append(name)
            return await handler(request)

        return owner_only(record)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    sub = web.Application(middlewares=[guard("sub")])
    sub.router.add_get("/inner", ok)
    root = web.Application(middlewares=[guard("root")])
    root.router.add_get("/outer", ok)
    root.add_subapp("/sub", sub)
    async with TestClient(TestServer(root)) as client:
        for path in ("/outer", "/sub/inner", "/sub/missing", "/missing"):
            await client.get(path)
    assert seen == ["root", "sub", "sub", "root"]


async def test_generated_request_ids_differ(client: Client) -> None:
    """Each request without an id of its own gets a new one."""
    ids = {(await client.get("/healthz")).headers["X-Request-Id"] for _ in range(50)}
    assert len(ids) == 50
