"""What a Databricks client asks a workspace besides the Jobs runs: host metadata, and the one
Clusters call that lakegate refuses.

- ``GET /.well-known/databricks-config``: newer SDKs (py >= 0.99, go) read it on every client
  start and log a warning when it fails. lakegate answers in a workspace's shape, describing
  lakegate itself as the client reached it (its scheme and Host, as a trusted proxy forwards
  them: ``steps.client_origin``): the OIDC endpoint it names is
  under lakegate, so a client that follows it keeps talking to lakegate and is never sent to
  the real workspace, whose identity a caller must not use. No workspace or account id: one
  lakegate fronts several workspaces, and an id would make an SDK scope tokens to one of them.
- ``GET /api/2.0/clusters/spark-versions``: Airflow's "Test connection" calls it. lakegate
  serves one-time Jobs runs only, so after authenticating the caller (a bad credential is still
  the 401 that tells a broken connection) it answers 501 ``NOT_IMPLEMENTED``, saying which call
  shows the connection works.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.callers import authenticate, public
from gateway.api.compat.errors import CompatError
from gateway.api.compat.steps import origin_of

__all__ = ["SPARK_VERSIONS_UNSERVED", "host_metadata", "setup_unserved_routes"]

HOST_METADATA = "/.well-known/databricks-config"
SPARK_VERSIONS_UNSERVED = (
    "lakegate serves the Jobs API's one-time runs (runs/submit, get, cancel, list, "
    "get-output), not the Clusters API: clusters/spark-versions is not served. To test a "
    "connection, call GET /api/2.1/jobs/runs/list."
)


@public
async def host_metadata(request: web.Request) -> web.Response:
    """The host metadata of lakegate itself, in the shape a workspace answers it."""
    origin = origin_of(request)
    return web.json_response({"oidc_endpoint": f"{origin}/oidc", "host_type": "workspace"})


async def spark_versions(request: web.Request) -> web.Response:
    authenticate(request, "clusters.spark_versions")
    raise CompatError(SPARK_VERSIONS_UNSERVED, error_code="NOT_IMPLEMENTED", status=501)


def setup_unserved_routes(app: web.Application) -> None:
    """The facade's routes (under its /api prefix) that answer with a refusal."""
    app.router.add_get(
        r"/{version:2\.[01]}/clusters/spark-versions",
        spark_versions,
        name="compat_spark_versions",
        allow_head=False,
    )
