"""The composition root: builds every component from settings and owns its lifetime.

Each resource is opened and closed by exactly one ``cleanup_ctx`` generator, in order: the
ledger, the HTTP session to Databricks, the Kubernetes client, the identities (with the
ServiceAccount informer, which they alone own), the callers (authentication methods, grants,
and the HTTP session for JWT issuers' keys), the run service, and the background tasks
(poller, metrics refresher), which are cancelled and awaited on shutdown. A context that opens
a resource registers the resource's readiness check beside its cleanup, so /readyz reports
exactly what is open. Every key the application holds is in ``gateway.appkeys``. Tests inject
fakes through ``Overrides`` instead of patching.
"""

from __future__ import annotations

import os

from aiohttp import web

from gateway import policy_ctx
from gateway.api import setup_api
from gateway.app.callers import callers_ctx
from gateway.app.gitcreds import gitcreds_ctx
from gateway.app.identities import doctor_ctx, identities_ctx
from gateway.app.overrides import Ctx, Overrides
from gateway.app.resources import http_ctx, kube_ctx, store_ctx
from gateway.app.service import background_ctx, service_ctx
from gateway.appkeys import METRICS, READINESS, SETTINGS, TASKS, TENANTS_RELOADER
from gateway.metrics import Metrics
from gateway.readiness import Readiness, ReadinessChecks, workspaces_check
from gateway.secrets_registry import remember_settings
from gateway.settings import Settings
from gateway.settings.reload import TenantsReloader
from gateway.webhooks.wiring import webhooks_ctx

__all__ = ["Ctx", "Overrides", "create_app"]


def create_app(settings: Settings, overrides: Overrides | None = None) -> web.Application:
    over = overrides or Overrides()
    # Masked from the start, not only once the code using each secret has read it (issue 9).
    remember_settings(settings, over.environ if over.environ is not None else os.environ)
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    checks = ReadinessChecks()
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TASKS] = []
    readiness: Readiness = checks
    app[READINESS] = readiness
    # Not a resource of its own: the allow-list is settings.
    checks.add("workspaces", workspaces_check(len(settings.workspaces)))
    setup_api(app, settings)
    app.cleanup_ctx.append(store_ctx(settings, over, checks))
    app.cleanup_ctx.append(http_ctx(settings))
    app.cleanup_ctx.append(kube_ctx(settings, over, checks))
    app.cleanup_ctx.append(identities_ctx(settings, over, checks))
    app.cleanup_ctx.append(doctor_ctx())
    app.cleanup_ctx.append(callers_ctx(settings, over))
    app.cleanup_ctx.append(service_ctx(settings, over))
    app.cleanup_ctx.append(gitcreds_ctx(settings, over))
    app.cleanup_ctx.append(background_ctx(over, checks))
    app.cleanup_ctx.append(policy_ctx.admission_ctx(over.run_poller, checks))
    if over.settings_source is not None:
        stale = app[METRICS].tenant_policy_stale.set
        reloader = TenantsReloader(settings, over.settings_source, on_stale=stale)
        app[TENANTS_RELOADER] = reloader
        app.cleanup_ctx.append(policy_ctx.tenants_ctx(reloader, checks))
    app.cleanup_ctx.append(webhooks_ctx(settings, over, checks))
    return app
