"""The HTTP API: the /v1 run routes, operational endpoints and the middlewares around them,
with the Databricks-compatible facade mounted as a sub-application at /api.

The composition root creates ``web.Application(client_max_size=settings.server.max_body_bytes)``,
calls ``setup_api(app, settings)``, and sets the keys of ``gateway.appkeys`` in a
``cleanup_ctx`` before the server accepts requests; among them ``CALLERS``, without which every
protected route answers 401.

Middlewares, outermost first: the request context (request id, access log, metrics) sees the
final status of every answer; then the error middleware of the application serving the route
(problem+json for the root, Databricks' shape for /api); then the route guards, the body
limit and the caller middleware, which refuse through that error middleware.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.api import ops, outputs, quota, runs
from gateway.api.callers import callers_middleware
from gateway.api.compat import HOST_METADATA, PREFIX, compat_app, host_metadata
from gateway.api.doctor import setup_doctor_routes
from gateway.api.middlewares import body_limit, owner_only, request_context
from gateway.api.problems import problem_middleware
from gateway.api.webhooks import setup_webhook_routes
from gateway.settings import Settings

__all__ = ["route_guards", "setup_api", "setup_routes"]

RUNS = "/v1/namespaces/{namespace:[^/]+}/runs"


def setup_routes(app: web.Application) -> None:
    # HEAD is left out: every route the app serves is one the OpenAPI document describes.
    router = app.router
    router.add_post(RUNS, runs.submit_run, name="submit_run")
    router.add_get(RUNS, runs.list_runs, name="list_runs", allow_head=False)
    router.add_get(RUNS + "/{run_id:[^/]+}", runs.get_run, name="get_run", allow_head=False)
    router.add_post(RUNS + "/{run_id:[^/]+}/cancel", runs.cancel_run, name="cancel_run")
    router.add_get(
        RUNS + "/{run_id:[^/]+}/output",
        outputs.get_run_output,
        name="get_run_output",
        allow_head=False,
    )
    router.add_get(
        "/v1/namespaces/{namespace:[^/]+}/quota",
        quota.get_quota,
        name="get_quota",
        allow_head=False,
    )
    router.add_get("/healthz", ops.healthz, name="healthz", allow_head=False)
    router.add_get("/readyz", ops.readyz, name="readyz", allow_head=False)
    router.add_get("/metrics", ops.metrics, name="metrics", allow_head=False)
    router.add_get("/openapi.json", ops.openapi, name="openapi", allow_head=False)
    # Databricks SDKs read it on every client start; see gateway.api.compat.workspace.
    router.add_get(HOST_METADATA, host_metadata, name="databricks_config", allow_head=False)
    setup_webhook_routes(app)
    setup_doctor_routes(app)


def route_guards(settings: Settings) -> list[Middleware]:
    """The body limit, then the caller middleware, each run by the route's own application."""
    # The caller comes last, just before the handler: it is known before a byte of the body
    # is read. It refuses nothing itself; handlers call callers.authorize.
    return [owner_only(body_limit(settings.server.max_body_bytes)), owner_only(callers_middleware)]


def setup_api(app: web.Application, settings: Settings) -> None:
    """Register the API's middlewares, its routes and the facade's sub-application on ``app``."""
    guards = route_guards(settings)
    app.middlewares.extend([request_context, problem_middleware, *guards])
    setup_routes(app)
    app.add_subapp(PREFIX, compat_app(guards))
