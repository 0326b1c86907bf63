"""The facade as a sub-application: its refusals keep Databricks' shape, /v1 keeps its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import SPEC, ClientFactory, chunked_body, small_body_settings
from tests.api.fakes import FakeRunService
from tests.api.schema import assert_problem

SUBMIT = "/api/2.2/jobs/runs/submit"


def assert_databricks_shape(body: dict[str, object], code: str) -> None:
    assert body["error_code"] == code
    assert isinstance(body["message"], str)
    assert "type" not in body


@pytest.mark.parametrize(
    "body",
    [lambda: b"x" * 4096, lambda: chunked_body(8)],
    ids=["declared-length", "chunked"],
)
async def test_an_oversized_body_is_refused_in_databricks_shape(
    make_client: ClientFactory, service: FakeRunService, body: Callable[[], Any]
) -> None:
    """Over the limit under /api, declared or found while reading: Databricks' 400."""
    client = await make_client(service, settings=small_body_settings(2048))
    headers = {"Content-Type": "application/json", "X-Lakegate-Namespace": "team-a"}
    resp = await client.post(SUBMIT, data=body(), headers=headers)
    answer = await resp.json(content_type=None)
    assert (resp.status, resp.content_type) == (400, "application/json")
    assert_databricks_shape(answer, "INVALID_PARAMETER_VALUE")
    assert "2048" in answer["message"]
    assert service.runs == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/2.1/jobs/runs/nope"),
        ("DELETE", "/api/2.2/jobs/runs/get"),
        ("POST", "/api/2.0/clusters/create"),
    ],
)
async def test_unknown_routes_and_methods_under_api_are_databricks_404s(
    make_client: ClientFactory, service: FakeRunService, method: str, path: str
) -> None:
    """Whatever the sub-application does not route is ENDPOINT_NOT_FOUND, as Databricks says."""
    client = await make_client(service)
    resp = await client.request(method, path)
    assert resp.status == 404
    assert_databricks_shape(await resp.json(content_type=None), "ENDPOINT_NOT_FOUND")


async def test_the_bare_prefix_is_not_the_facade(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """/api itself is no Databricks path: it is an unknown route, answered as problem+json."""
    client = await make_client(service)
    resp = await client.get("/api")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert_problem(await resp.json(content_type=None), 404, "not-found")


async def test_v1_refusals_stay_problems_beside_the_facade(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """The same oversized body under /v1 is a 413 problem: the facade's middleware is not on
    its way."""
    client = await make_client(service, settings=small_body_settings(2048))
    resp = await client.post("/v1/namespaces/team-a/runs", json={"spec": SPEC, "pad": "x" * 4096})
    assert resp.status == 413
    assert_problem(await resp.json(content_type=None), 413, "payload-too-large")


async def test_facade_routes_are_counted_under_their_full_template(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """Metrics and the access log name a facade route with its /api prefix."""
    client = await make_client(service)
    await client.get("/api/2.1/jobs/runs/list")
    text = await (await client.get("/metrics")).text()
    assert 'route="/api/{version}/jobs/runs/list"' in text
