"""Every typed key of the application and of its requests, in one module.

The composition root (``gateway.app``) sets the application keys in its ``cleanup_ctx``
generators before the server accepts requests; the API reads the first group with
``request.config_dict[KEY]``, so it also works mounted as a sub-application (the
Databricks-compatible facade is one). The second group is the composition root's own (and
tests'): the API never reads it.

Why a module of its own rather than ``gateway.appkeys``: the root's keys name concrete
components (the store, the poller, the informer, the Kubernetes client) that the API must not
know about, while the API's keys must be importable from the API. A module outside both, that
only names types, serves both; an import-linter contract keeps everything below the API from
importing it, so no component reaches into the application's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from gateway.callers.gate import CallerGate
from gateway.callers.types import Caller
from gateway.doctor import Doctor
from gateway.identity.resolver import IdentityResolver
from gateway.metrics import Metrics
from gateway.model import RunRecord
from gateway.readiness import Readiness
from gateway.runs.poller import Poller
from gateway.runs.queue import Admitter
from gateway.runs.quota import QuotaReport
from gateway.runs.service import RunsService
from gateway.runs.types import RunService
from gateway.settings import Settings
from gateway.settings.reload import TenantsReloader
from gateway.singleflight import TtlCache
from gateway.store.base import Store
from gateway.webhooks.admin import WebhookAdmin

if TYPE_CHECKING:
    # Typing only: importing them loads kubernetes-asyncio, which kubernetes.mode: off skips.
    from gateway.kube import KubeClient, ServiceAccountInformer


class RemoteRuns(Protocol):
    """What the Databricks-compatible facade reads from Databricks, as Databricks sends it."""

    async def remote_run(
        self, run: RunRecord, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...

    async def remote_output(
        self, namespace: str, task_run_id: int, *, run: RunRecord | None = None
    ) -> dict[str, Any]: ...

    async def remote_task_run(
        self, namespace: str, task_run_id: int, *, params: Mapping[str, str] | None = None
    ) -> tuple[dict[str, Any], RunRecord]: ...


# --- what the API reads ---------------------------------------------------------------------

SETTINGS = web.AppKey("lakegate.settings", Settings)
METRICS = web.AppKey("lakegate.metrics", Metrics)
# /readyz: the composition root's ``ReadinessChecks``, to which each resource adds its check.
READINESS: web.AppKey[Readiness] = web.AppKey("lakegate.readiness")
SERVICE = web.AppKey("lakegate.service", RunService)
REMOTE_RUNS: web.AppKey[RemoteRuns] = web.AppKey("lakegate.remote_runs")
# The facade's ended runs, as Databricks answered runs/get for them (gateway.api.compat.steps).
ENDED_RUNS: web.AppKey[TtlCache[int, dict[str, Any]]] = web.AppKey("lakegate.compat.ended_runs")
# Who may call: the configured authentication methods and grants (see gateway.callers).
CALLERS = web.AppKey("lakegate.callers", CallerGate)
# GET /v1/namespaces/{namespace}/quota.
QUOTA = web.AppKey("lakegate.quota", QuotaReport)
# Dead webhook events, redelivery and disabled endpoints (see gateway.webhooks.admin).
WEBHOOKS = web.AppKey("lakegate.webhooks", WebhookAdmin)
# The tenant doctor (GET /v1/namespaces, GET /v1/namespaces/{namespace}/identity).
DOCTOR = web.AppKey("lakegate.doctor", Doctor)

# --- what only the composition root reads ---------------------------------------------------

STORE = web.AppKey("lakegate.store", Store)
DATABRICKS_HTTP = web.AppKey("lakegate.databricks_http", aiohttp.ClientSession)
JWKS_HTTP = web.AppKey("lakegate.jwks_http", aiohttp.ClientSession)
KUBE: web.AppKey[KubeClient] = web.AppKey("lakegate.kube")
INFORMER: web.AppKey[ServiceAccountInformer] = web.AppKey("lakegate.informer")
IDENTITIES: web.AppKey[IdentityResolver] = web.AppKey("lakegate.identities")
RUNS = web.AppKey("lakegate.runs", RunsService)
POLLER = web.AppKey("lakegate.poller", Poller)
ADMITTER = web.AppKey("lakegate.admitter", Admitter)
TENANTS_RELOADER = web.AppKey("lakegate.tenants_reloader", TenantsReloader)
TASKS: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("lakegate.tasks")
WEBHOOK_HTTP = web.AppKey("lakegate.webhook_http", aiohttp.ClientSession)

# --- per request ----------------------------------------------------------------------------

REQUEST_ID = web.RequestKey("lakegate.request_id", str)
# The problem type slug of an error response, so the access log can say what went wrong
# without logging the body.
PROBLEM = web.RequestKey("lakegate.problem", str)
# The authenticated caller, set by the caller middleware when a credential was accepted.
CALLER = web.RequestKey("lakegate.caller", Caller)
