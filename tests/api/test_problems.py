"""Every error becomes application/problem+json in one place, whatever raised it."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from gateway.api.problems import slug
from gateway.errors import (
    DatabricksRateLimited,
    DatabricksUnavailable,
    IdentityNotConfigured,
    QuotaExceeded,
    StoreError,
)
from tests.api.conftest import SPEC, Client, ClientFactory, chunked_body, small_body_settings
from tests.api.fakes import FakeRunService
from tests.api.schema import assert_problem

RUNS = "/v1/namespaces/team-a/runs"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("QuotaExceeded", "quota-exceeded"),
        ("InvalidRequest", "invalid-request"),
        ("DatabricksRateLimited", "databricks-rate-limited"),
        ("Method Not Allowed", "method-not-allowed"),
        ("Not Found", "not-found"),
    ],
)
def test_slug_turns_names_into_problem_types(name: str, expected: str) -> None:
    """Class names and reason phrases become kebab-case problem type slugs."""
    assert slug(name) == expected


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    """A path no route serves answers 404 as problem+json with the path as instance."""
    resp = await client.get("/v2/nothing")
    body = await resp.json(content_type=None)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert_problem(body, 404, "not-found")
    assert body["instance"] == "/v2/nothing"


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    """A known path with another method answers 405, listing the allowed methods."""
    resp = await client.delete("/healthz")
    body = await resp.json(content_type=None)
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert_problem(body, 405, "method-not-allowed")
    assert "GET" in body["detail"]


async def test_declared_oversized_body_is_a_413_before_reading(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """A Content-Length over the limit answers 413 and never reaches the service."""
    client = await make_client(service, settings=small_body_settings(2048))
    resp = await client.post(RUNS, data=b"x" * 4096, headers={"Content-Type": "application/json"})
    body = await resp.json(content_type=None)
    assert resp.status == 413
    assert_problem(body, 413, "payload-too-large")
    assert "2048" in body["detail"]
    assert service.runs == {}


async def test_chunked_oversized_body_is_a_413(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """A chunked body without Content-Length is cut off by aiohttp and still a 413 problem."""
    client = await make_client(service, settings=small_body_settings(2048))
    resp = await client.post(RUNS, data=chunked_body(8))
    assert resp.status == 413
    assert_problem(await resp.json(content_type=None), 413, "payload-too-large")


async def test_body_limit_holds_when_the_app_allows_more(
    make_client: ClientFactory, service: FakeRunService
) -> None:
    """The configured limit holds even if the app's client_max_size was set higher."""
    client = await make_client(
        service, settings=small_body_settings(2048), client_max_size=1_000_000
    )
    resp = await client.post(RUNS, data=chunked_body(4))
    assert resp.status == 413


async def test_unexpected_exception_is_a_500_that_leaks_nothing(
    client: Client, service: FakeRunService
) -> None:
    """An unexpected exception answers a generic 500 and logs the traceback."""
    service.fail_next = RuntimeError("db password is hunter2")
    with capture_logs() as logs:
        resp = await client.get(f"{RUNS}/1")
        text = await resp.text()
    assert resp.status == 500
    assert "hunter2" not in text
    assert_problem(await resp.json(content_type=None), 500, "internal-error")
    [event] = [e for e in logs if e["event"] == "unhandled_error"]
    assert event["log_level"] == "error"
    assert "RuntimeError: db password is hunter2" in event["exception"]
    assert "Traceback" in event["exception"]


async def test_quota_exceeded_is_a_429_with_retry_after_rounded_up(
    client: Client, service: FakeRunService
) -> None:
    """QuotaExceeded answers 429, Retry-After in whole seconds, and its fields."""
    service.fail_next = QuotaExceeded(
        "team-a is over 120 submissions a minute", namespace="team-a", retry_after=2.2
    )
    resp = await client.post(RUNS, json={"spec": SPEC})
    body = await resp.json(content_type=None)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert_problem(body, 429, "quota-exceeded")
    assert body["namespace"] == "team-a"
    assert body["retry_after"] == 2.2
    assert body["detail"] == "team-a is over 120 submissions a minute"


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (DatabricksRateLimited("Databricks is throttling", retry_after=4.0), "4"),
        (DatabricksUnavailable("Databricks timed out", retry_after=0.1), "1"),
        (DatabricksUnavailable("Databricks timed out"), None),
        (StoreError("the ledger is locked"), None),
    ],
)
async def test_unavailable_errors_are_503_with_retry_after_when_known(
    client: Client, service: FakeRunService, error: Exception, retry_after: str | None
) -> None:
    """503-class errors carry Retry-After exactly when the error knows when to retry."""
    service.fail_next = error
    resp = await client.post(RUNS, json={"spec": SPEC})
    assert resp.status == 503
    assert resp.headers.get("Retry-After") == retry_after
    assert_problem(await resp.json(content_type=None), 503)


async def test_error_fields_are_added_to_the_problem(
    client: Client, service: FakeRunService
) -> None:
    """A domain error's status, title and fields() shape the problem."""
    service.fail_next = IdentityNotConfigured(
        "team-a has no Databricks identity", namespace="team-a"
    )
    resp = await client.post(RUNS, json={"spec": SPEC})
    body = await resp.json(content_type=None)
    assert resp.status == 403
    assert body["title"] == "Namespace has no Databricks identity"
    assert body["namespace"] == "team-a"
    assert_problem(body, 403, "identity-not-configured")


async def test_server_side_domain_errors_are_logged_as_warnings(
    client: Client, service: FakeRunService
) -> None:
    """A 5xx LakegateError is logged with its class, without a traceback."""
    service.fail_next = StoreError("the ledger is locked")
    with capture_logs() as logs:
        await client.get(f"{RUNS}/1")
    [event] = [e for e in logs if e["event"] == "request_failed"]
    assert event["error"] == "StoreError"
    assert event["status"] == 503
    assert "exc_info" not in event
