"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web
from openapi_spec_validator import validate

from gateway.api import setup_api
from gateway.api.ops import OPENAPI
from gateway.callers.gate import DISABLED_DETAIL
from gateway.readiness import ReadinessReport
from gateway.settings import Settings
from tests.api.conftest import Client, ClientFactory
from tests.api.fakes import FakeRunService
from tests.api.schema import assert_matches

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def test_healthz_answers_ok(client: Client) -> None:
    """/healthz answers 200 {"status": "ok"}."""
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_readyz_answers_200_when_every_check_passes(client: Client) -> None:
    """/readyz answers 200 with each check's result."""
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200
    assert body == {
        "status": "ready",
        "checks": {
            "store": {"ok": True, "detail": "ok"},
            "callers": {"ok": True, "detail": DISABLED_DETAIL},
        },
    }
    assert_matches("Readiness", body)


async def test_readyz_answers_503_when_a_check_fails(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """/readyz answers 503 naming the failing check."""

    async def half_ready() -> ReadinessReport:
        return {"store": (True, "ok"), "databricks": (False, "workspace unreachable")}

    client = await make_client(service, readiness=half_ready)
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["databricks"] == {"ok": False, "detail": "workspace unreachable"}


async def test_readyz_answers_503_when_the_checks_crash(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """A readiness callable that raises means not ready, without its message."""

    async def broken() -> ReadinessReport:
        raise RuntimeError("connection string with password")

    client = await make_client(service, readiness=broken)
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "password" not in await resp.text()


async def test_readyz_answers_503_when_the_checks_hang(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """A readiness callable that never answers is cut off and reported as not ready."""

    async def hung() -> ReadinessReport:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = await make_client(service, readiness=hung)
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert "longer than" in body["checks"]["readiness"]["detail"]


async def test_metrics_exposes_prometheus_text(client: Client) -> None:
    """/metrics serves the text format 0.0.4 including the HTTP request counter."""
    await client.get("/healthz")
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'lakegate_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text


async def test_openapi_json_is_a_valid_openapi_31_document(client: Client) -> None:
    """/openapi.json is JSON that openapi-spec-validator accepts as OpenAPI 3.1."""
    resp = await client.get("/openapi.json")
    document = await resp.json()
    assert resp.status == 200
    assert document["openapi"].startswith("3.1")
    validate(document)


def _served(app: web.Application) -> set[tuple[str, str]]:
    # /api/ is the Databricks Jobs API facade: Databricks' reference documents it, and its
    # errors are Databricks-shaped, not problems (tests/compat covers it).
    return {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and not route.resource.canonical.startswith("/api/")
    }


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in OPENAPI["paths"].items()
        for method in item
        if method in _METHODS
    }


def test_every_served_route_is_documented() -> None:
    """Each route the app registers has an operation in the OpenAPI document."""
    app = web.Application()
    setup_api(app, Settings())
    assert _served(app) - _documented() == set()


def test_every_documented_operation_is_served() -> None:
    """Each operation in the OpenAPI document is a route the app registers."""
    app = web.Application()
    setup_api(app, Settings())
    assert _documented() - _served(app) == set()


def test_every_error_response_is_documented_as_a_problem() -> None:
    """Each documented 4xx/5xx except /readyz's 503 is problem+json with the Problem schema."""
    responses = OPENAPI["components"]["responses"]
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                resolved = responses[response["$ref"].rsplit("/", 1)[-1]]
                schema = resolved["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, method, status)
