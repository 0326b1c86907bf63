"""The HTTP API: the /v1 run routes, operational endpoints and the middlewares around them.

The composition root creates ``web.Application(client_max_size=settings.server.max_body_bytes)``,
calls ``setup_api(app, settings)``, and sets the keys of ``gateway.api.keys`` in a
``cleanup_ctx`` before the server accepts requests; among them ``CALLERS``, without which every
protected route answers 401.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api import ops, runs
from gateway.api.callers import callers_middleware
from gateway.api.compat import databricks_errors, setup_compat_routes
from gateway.api.middlewares import body_limit, request_context
from gateway.api.problems import problem_middleware
from gateway.settings import Settings

__all__ = ["setup_api", "setup_middlewares", "setup_routes"]

RUNS = "/v1/namespaces/{namespace:[^/]+}/runs"


def setup_routes(app: web.Application) -> None:
    # HEAD is left out: every route the app serves is one the OpenAPI document describes.
    router = app.router
    router.add_post(RUNS, runs.submit_run, name="submit_run")
    router.add_get(RUNS, runs.list_runs, name="list_runs", allow_head=False)
    router.add_get(RUNS + "/{run_id:[^/]+}", runs.get_run, name="get_run", allow_head=False)
    router.add_post(RUNS + "/{run_id:[^/]+}/cancel", runs.cancel_run, name="cancel_run")
    router.add_get("/healthz", ops.healthz, name="healthz", allow_head=False)
    router.add_get("/readyz", ops.readyz, name="readyz", allow_head=False)
    router.add_get("/metrics", ops.metrics, name="metrics", allow_head=False)
    router.add_get("/openapi.json", ops.openapi, name="openapi", allow_head=False)
    # The Databricks-compatible facade owns everything under /api/.
    setup_compat_routes(app)


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    # Outermost first: the request context sees the final status of every answer, including
    # the problem responses built by the middleware inside it.
    app.middlewares.extend(
        [
            request_context,
            problem_middleware,
            # Inside the problem middleware, so /api/ errors, the refusals of every middleware
            # after it included, answer in Databricks' shape and never reach problem+json.
            databricks_errors,
            body_limit(settings.server.max_body_bytes),
            # Last, just before the handler: the caller is known before a byte of the body is
            # read. It refuses nothing itself; handlers call callers.authorize.
            callers_middleware,
        ]
    )


def setup_api(app: web.Application, settings: Settings) -> None:
    """Register the API's middlewares and routes on ``app``."""
    setup_middlewares(app, settings)
    setup_routes(app)
