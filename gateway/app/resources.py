"""The edges every other context stands on: the ledger, the HTTP session to Databricks, and
the Kubernetes client, each opened and closed here and nowhere else."""

from __future__ import annotations

import asyncio
import functools
import os
import urllib.request
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web

from gateway import __version__
from gateway.app.overrides import Ctx, Overrides
from gateway.appkeys import (
    DATABRICKS_HTTP,
    KUBE,
    METRICS,
    STORE,
)
from gateway.errors import LakegateError
from gateway.httpsession import shared_session
from gateway.logs import get_logger
from gateway.readiness import ReadinessChecks
from gateway.settings import Settings, StoreSettings
from gateway.store import Store
from gateway.store.postgres import PoolSettings, PostgresStore
from gateway.store.postgres_dsn import DsnSource, read_dsn
from gateway.store.sqlite import SqliteStore

log = get_logger(__name__)


async def build_store(settings: StoreSettings, environ: Mapping[str, str]) -> Store:
    """The ledger the settings choose, not yet opened."""
    if settings.backend == "sqlite":
        return SqliteStore(settings.sqlite_path)
    source = DsnSource(
        dsn=None if settings.dsn is None else settings.dsn.get_secret_value(),
        dsn_env=settings.dsn_env,
        dsn_file=settings.dsn_file,
    )
    dsn = await asyncio.to_thread(read_dsn, source, environ)
    return PostgresStore(
        PoolSettings(
            dsn=dsn,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            connect_timeout=settings.connect_timeout_seconds,
        )
    )


def store_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        environ = over.environ if over.environ is not None else os.environ
        store = over.store or await build_store(settings.store, environ)
        await store.open()
        app[STORE] = store
        commits = app[METRICS].watch_ledger(lambda: store.commits)
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
            app[METRICS].registry.unregister(commits)

    return ctx


def http_ctx(settings: Settings) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # One session for every call to Databricks and its token endpoints; per-host caps are
        # the Jobs client's, the pool here only bounds sockets overall.
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300)
        session = shared_session(
            connector=connector,
            user_agent=f"lakegate/{__version__}",
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


def kube_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # One ApiClient for identity discovery, TokenReview and namespace labels alike.
        if settings.kubernetes.mode == "off":
            yield
            return
        # Imported here, not at the top: kubernetes-asyncio is about 40 MiB of RSS, which a
        # gateway with kubernetes.mode: off never loads.
        from gateway.kube import KubeClient, KubeConfig

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
