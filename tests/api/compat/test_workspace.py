"""What a client asks the workspace besides Jobs runs: host metadata, and spark-versions."""

from __future__ import annotations

import logging

import pytest

from gateway.api.compat.workspace import SPARK_VERSIONS_UNSERVED
from tests.api.compat.conftest import TEAM_A, CompatStack, in_thread
from tests.api.compat.test_http import assert_databricks_error, call


async def test_host_metadata_describes_lakegate_as_the_client_reached_it(
    compat_stack: CompatStack,
) -> None:
    """A workspace's shape, with no credential needed, pointing only at lakegate's own host:
    never the emulated workspace behind it."""
    stack = compat_stack
    resp, body = await call(stack, "GET", "/.well-known/databricks-config")
    assert resp.status == 200, body
    assert body == {"oidc_endpoint": f"{stack.url}/oidc", "host_type": "workspace"}
    resp, body = await call(
        stack,
        "GET",
        "/.well-known/databricks-config",
        headers={"Host": "team-00.lakegate.example:8443"},
    )
    assert body["oidc_endpoint"] == "http://team-00.lakegate.example:8443/oidc"
    assert stack.gateway.emulator.url not in str(body)


async def test_the_sdk_starts_without_a_host_metadata_warning(
    compat_stack: CompatStack, caplog: pytest.LogCaptureFixture
) -> None:
    """databricks-sdk reads the metadata on every client start: it finds it, and the
    discovery URL it derives stays on lakegate."""
    stack = compat_stack
    with caplog.at_level(logging.WARNING, logger="databricks.sdk"):
        w = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)))
    assert not [r for r in caplog.records if "host metadata" in r.getMessage()]
    assert w.config.discovery_url == f"{stack.url}/oidc/.well-known/oauth-authorization-server"


async def test_spark_versions_is_refused_after_the_credential_is_checked(
    compat_stack: CompatStack,
) -> None:
    """Airflow's Test connection: a bad credential is 401; a good one hears 501 NOT_IMPLEMENTED
    saying what lakegate serves and which call tests a connection."""
    stack = compat_stack
    path = "/api/2.0/clusters/spark-versions"
    resp, body = await call(stack, "GET", path, token="not-a-token")
    assert_databricks_error(resp, body, 401, "UNAUTHENTICATED")
    resp, body = await call(stack, "GET", path, token=stack.token(TEAM_A))
    assert_databricks_error(resp, body, 501, "NOT_IMPLEMENTED")
    assert body["message"] == SPARK_VERSIONS_UNSERVED


async def test_what_is_not_served_answers_as_the_readme_table_says(
    compat_stack: CompatStack,
) -> None:
    """run-now, repair and cancel-all are a workspace's 404 for an unknown endpoint; the OIDC
    endpoint the host metadata names is lakegate's, and it serves no OAuth (404 problem)."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    for path in ("jobs/run-now", "jobs/runs/repair", "jobs/runs/cancel-all"):
        resp, body = await call(stack, "POST", f"/api/2.1/{path}", token=token, json={})
        assert_databricks_error(resp, body, 404, "ENDPOINT_NOT_FOUND")
    resp, body = await call(stack, "GET", "/oidc/.well-known/oauth-authorization-server")
    assert (resp.status, resp.content_type) == (404, "application/problem+json")
