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

import asyncio
import contextlib
import functools
import os
import signal
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver

from gateway import __version__, policy_ctx
from gateway.api import setup_api
from gateway.appkeys import (
    ADMITTER,
    CALLERS,
    DATABRICKS_HTTP,
    IDENTITIES,
    INFORMER,
    JWKS_HTTP,
    KUBE,
    METRICS,
    POLLER,
    QUOTA,
    READINESS,
    REMOTE_RUNS,
    RUNS,
    SERVICE,
    SETTINGS,
    STORE,
    TASKS,
    TENANTS_RELOADER,
)
from gateway.callers import CallerGate
from gateway.callers.api_keys import Hasher, derive
from gateway.databricks.budgets import RequestBudgets
from gateway.databricks.jobs import JobsClient
from gateway.errors import LakegateError
from gateway.identity import plans
from gateway.identity.builders import Builder
from gateway.identity.cache import TokenCache
from gateway.identity.resolver import IdentityResolver, NamespaceResolver
from gateway.kube import InformerOptions, KubeClient, KubeConfig, ServiceAccountInformer
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import RunState
from gateway.readiness import Check, Readiness, ReadinessChecks, task_check, workspaces_check
from gateway.runs.types import utcnow
from gateway.runs.wiring import wire_runs
from gateway.secrets_registry import remember_settings
from gateway.settings import Settings
from gateway.settings.reload import TenantsReloader
from gateway.store.base import Store
from gateway.store.sqlite import SqliteStore
from gateway.tenant_refusals import refusals_check
from gateway.webhooks.wiring import webhooks_ctx

log = get_logger(__name__)

METRICS_REFRESH_SECONDS = 15.0
NOT_ENDED = frozenset(s for s in RunState if not s.terminal)


@dataclass(frozen=True)
class Overrides:
    """What tests and embedders may replace; everything else is built from settings."""

    store: Store | None = None
    identities: Callable[[aiohttp.ClientSession], IdentityResolver] | None = None
    clock: Callable[[], datetime] | None = None
    environ: Mapping[str, str] | None = None
    run_poller: bool = True
    poll_idle_seconds: float = 0.5
    # Replaces poller.inline_submit_seconds when set (tests make Databricks look slow fast).
    inline_submit_seconds: float | None = None
    # Reads the settings again (``lakegate serve`` passes its loader); when given, SIGHUP
    # reloads the ``callers`` section (methods' keys, issuers, grants) without a restart.
    settings_source: Callable[[], Settings] | None = None
    # The webhook dispatcher, and the resolver under its guard (tests answer names themselves).
    run_dispatcher: bool = True
    webhook_resolver: AbstractResolver | None = None
    # Derives salted API-key digests (tests count concurrent checks with their own).
    api_key_hasher: Hasher = derive


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
    app.cleanup_ctx.append(_store_ctx(settings, over, checks))
    app.cleanup_ctx.append(_http_ctx(settings))
    app.cleanup_ctx.append(_kube_ctx(settings, over, checks))
    app.cleanup_ctx.append(_identities_ctx(settings, over, checks))
    app.cleanup_ctx.append(_callers_ctx(settings, over))
    app.cleanup_ctx.append(_service_ctx(settings, over))
    app.cleanup_ctx.append(_background_ctx(over, checks))
    app.cleanup_ctx.append(policy_ctx.admission_ctx(over.run_poller, checks))
    if over.settings_source is not None:
        stale = app[METRICS].tenant_policy_stale.set
        reloader = TenantsReloader(settings, over.settings_source, on_stale=stale)
        app[TENANTS_RELOADER] = reloader
        app.cleanup_ctx.append(policy_ctx.tenants_ctx(reloader, checks))
    app.cleanup_ctx.append(webhooks_ctx(settings, over, checks))
    return app


Ctx = Callable[[web.Application], AsyncIterator[None]]


def _store_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = over.store or SqliteStore(settings.store.sqlite_path)
        await store.open()
        app[STORE] = store
        log.info("store_opened", backend=settings.store.backend)

        async def ping() -> tuple[bool, str]:
            try:
                await store.ping()
            except LakegateError as exc:
                return False, exc.message
            return True, settings.store.backend

        try:
            with checks.registered("store", ping):
                yield
        finally:
            await store.close()

    return ctx


def _http_ctx(settings: Settings) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # One session for every call to Databricks and its token endpoints; per-host caps are
        # the Jobs client's, the pool here only bounds sockets overall.
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": f"lakegate/{__version__}"},
            # trust_env makes aiohttp read ~/.netrc and the proxy variables in worker threads
            # on every request (~0.3 ms of CPU each); only worth it when a proxy is set.
            trust_env=bool(urllib.request.getproxies()),
        )
        app[DATABRICKS_HTTP] = session
        try:
            yield
        finally:
            await session.close()

    return ctx


def _kube_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # One ApiClient for identity discovery, TokenReview and namespace labels alike.
        if settings.kubernetes.mode == "off":
            yield
            return
        environ = over.environ if over.environ is not None else os.environ
        kube = await KubeClient.open(KubeConfig.from_settings(settings.kubernetes), environ=environ)
        app[KUBE] = kube
        reachable = functools.partial(kube.readiness, settings.kubernetes.unreachable_after_seconds)
        try:
            with checks.registered("kubernetes_api", reachable):
                yield
        finally:
            await kube.aclose()

    return ctx


def _identities_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        session = app[DATABRICKS_HTTP]
        if over.identities is not None:
            app[IDENTITIES] = over.identities(session)
            yield
            return
        environ = over.environ if over.environ is not None else os.environ
        cache = TokenCache(max_entries=settings.identity.token_cache_size, observer=app[METRICS])
        kube = app.get(KUBE)
        builder = Builder(session, cache, settings.identity, kube)
        informer: ServiceAccountInformer | None = None
        try:
            if kube is not None and settings.identity.discover_from_kubernetes:
                informer = kube.service_account_informer(
                    selectors=plans.ENABLED_SELECTORS,
                    namespaces=list(settings.kubernetes.namespaces) or None,
                    options=InformerOptions(
                        watch_timeout_seconds=settings.kubernetes.watch_timeout_seconds,
                        resync_seconds=settings.kubernetes.resync_seconds,
                        fallback_ttl_seconds=settings.kubernetes.fallback_ttl_seconds,
                    ),
                )
                app[INFORMER] = informer
            resolver = NamespaceResolver(
                settings,
                builder=builder,
                environ=environ,
                accounts=informer,
                kube=kube,
            )
            if informer is not None:
                informer.add_listener(resolver.on_account_change)
                informer.start()
            app[IDENTITIES] = resolver
            refused = refusals_check(resolver, app[METRICS])
            await refused()
            if TENANTS_RELOADER in app:  # a reload that changes an identity forgets it
                app[TENANTS_RELOADER].on_changed.append(resolver.flush)
            # What Kubernetes is ready for is what discovery sees: the informer.
            with (
                (
                    checks.registered("kubernetes", _informer_check(informer))
                    if informer is not None
                    else contextlib.nullcontext()
                ),
                checks.registered("tenant_policies", refused),
            ):
                yield
            await resolver.aclose()
        finally:
            if informer is not None:
                await informer.aclose()
            await builder.aclose()
            await cache.aclose()

    return ctx


def _callers_ctx(settings: Settings, over: Overrides) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # The one session for JWT issuers' discovery documents and key sets; it opens no
        # connection until a JWT from a configured issuer arrives.
        session = aiohttp.ClientSession(
            headers={"User-Agent": f"lakegate/{__version__}"}, trust_env=True
        )
        kube = app.get(KUBE)
        try:
            app[JWKS_HTTP] = session
            hasher = over.api_key_hasher
            gate = CallerGate(
                settings.callers, reviewer=kube, labels=kube, session=session, hasher=hasher
            )
            app[CALLERS] = gate
            gate.announce()
            with _reload_on_sighup(gate, over.settings_source, app.get(TENANTS_RELOADER)):
                yield
            await gate.aclose()
        finally:
            await session.close()

    return ctx


@contextlib.contextmanager
def _reload_on_sighup(
    gate: CallerGate, source: Callable[[], Settings] | None, tenants: TenantsReloader | None
) -> Iterator[None]:
    if source is None:
        yield
        return
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        try:
            # Reading and validating the files touches the disk: off the loop.
            fresh = await asyncio.to_thread(source)
            gate.reload(fresh.callers)
            if tenants is not None:
                tenants.apply(fresh)
        except LakegateError as exc:
            log.error("callers_reload_failed", error=exc.message)
            if tenants is not None:
                tenants.refuse(exc)

    def on_signal() -> None:
        task = asyncio.create_task(reload(), name="callers-reload")
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (NotImplementedError, RuntimeError):
        log.warning("callers_reload_unavailable", detail="SIGHUP cannot be handled here")
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        for task in pending:
            task.cancel()


def _service_ctx(settings: Settings, over: Overrides) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = app[METRICS]
        jobs = JobsClient.from_settings(
            app[DATABRICKS_HTTP], settings.databricks, on_call=metrics.observe_databricks_call,
            budgets=RequestBudgets.of(settings.workspaces),
        )  # fmt: skip
        runs = wire_runs(
            store=app[STORE],
            jobs=jobs,
            identities=app[IDENTITIES],
            settings=settings,
            metrics=metrics,
            clock=over.clock or utcnow,
            inline_submit_seconds=over.inline_submit_seconds,
            poll_idle_seconds=over.poll_idle_seconds,
        )
        app[RUNS] = app[SERVICE] = runs.service
        app[REMOTE_RUNS] = runs.submitter
        app[POLLER] = runs.poller
        app[ADMITTER] = runs.admitter
        app[QUOTA] = runs.quota
        yield

    return ctx


def _background_ctx(over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        tasks = app[TASKS]
        scope: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if over.run_poller:
            poller = asyncio.create_task(app[POLLER].run_forever(), name="poller")
            tasks.append(poller)
            scope = checks.registered("poller", task_check(poller))
        tasks.append(asyncio.create_task(_refresh_run_gauges(app), name="run-gauges"))
        try:
            with scope:
                yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            tasks.clear()

    return ctx


def _informer_check(informer: ServiceAccountInformer) -> Check:
    async def check() -> tuple[bool, str]:
        status = informer.status
        return status.ready, f"ServiceAccount informer {status.mode}"

    return check


async def _refresh_run_gauges(app: web.Application) -> None:
    metrics = app[METRICS]
    while True:
        try:
            counts = await app[STORE].counts_by_namespace_state(NOT_ENDED)
            quota_rows = await app[QUOTA].gauges(counts)
        except LakegateError as exc:
            log.warning("run_gauges_failed", error=exc.message)
            metrics.ledger_up.set(0)
        else:
            metrics.ledger_up.set(1)
            metrics.runs.clear()
            for (namespace, state), count in counts.items():
                metrics.runs.labels(namespace=namespace, state=state.value).set(count)
            metrics.set_quota_usage(quota_rows)
        await asyncio.sleep(METRICS_REFRESH_SECONDS)
