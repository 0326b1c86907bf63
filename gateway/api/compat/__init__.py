"""The Databricks Jobs API 2.1/2.2-compatible facade: one-time runs under /api/2.x/jobs/runs/.

The Databricks SDK, Airflow's Databricks operators, Flyte's connector and the Databricks CLI
point their host at lakegate and work unchanged; their bearer token is the caller credential
(``gateway.api.callers``), and the namespace is ``X-Lakegate-Namespace``, the one the Host
names (behind a proxy in ``server.trusted_proxies``, the Host it forwards), or the caller's own.

The facade is a sub-application mounted at /api, with middlewares of its own: its error
middleware (``middleware.databricks_errors``) answers every error under /api/ in Databricks'
shape, never problem+json, and /v1 requests never pass through it. The modules:

    handlers.py    HTTP and the run service calls; the routes
    listing.py     runs/list: the ledger's runs, each shown as runs/get shows it
    steps.py       the shared steps: namespace, GET parameters, what runs/get shows
                   (2.2's pages merged for 2.0/2.1 clients by gateway.databricks.pages)
    forwarded.py   the scheme and Host a client called, behind a trusted proxy (pure)
    middleware.py  Databricks' error shape for every refusal under /api/
    requests.py    what a Databricks client sends, read into lakegate's terms (pure)
    wire.py        lakegate's runs in the Jobs API's shapes (pure)
    errors.py      which status and error_code each failure takes (pure)
    workspace.py   host metadata (/.well-known/databricks-config, served by the root app)
                   and the Clusters call lakegate refuses
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.api.compat.handlers import setup_compat_routes
from gateway.api.compat.middleware import API_ROOT, databricks_errors
from gateway.api.compat.steps import ended_runs_ctx
from gateway.api.compat.workspace import HOST_METADATA, host_metadata, setup_unserved_routes

__all__ = ["API_ROOT", "HOST_METADATA", "PREFIX", "compat_app", "host_metadata"]

PREFIX = "/api"


def compat_app(guards: Iterable[Middleware]) -> web.Application:
    """The facade as a sub-application, to mount at ``PREFIX``.

    ``guards`` are the root's per-route middlewares (body limit, caller authentication); they
    run inside the facade's error middleware so that their refusals take Databricks' shape.
    """
    app = web.Application(middlewares=[databricks_errors, *guards])
    setup_compat_routes(app)
    setup_unserved_routes(app)
    app.cleanup_ctx.append(ended_runs_ctx)
    return app
