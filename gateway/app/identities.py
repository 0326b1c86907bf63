"""The identities context: the resolver, its builder and token cache, and the ServiceAccount
informer, which it alone owns."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.app.overrides import Ctx, Overrides
from gateway.appkeys import (
    DATABRICKS_HTTP,
    DOCTOR,
    IDENTITIES,
    INFORMER,
    KUBE,
    METRICS,
    TENANTS_RELOADER,
)
from gateway.doctor import Doctor
from gateway.identity import plans
from gateway.identity.builders import Builder
from gateway.identity.cache import TokenCache
from gateway.identity.resolver import NamespaceResolver
from gateway.readiness import Check, ReadinessChecks
from gateway.settings import Settings
from gateway.tenant_refusals import RefusalWatch

if TYPE_CHECKING:
    from gateway.kube import KubeClient, ServiceAccountInformer


def identities_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
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
            informer = _informer(settings, kube)
            if informer is not None:
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
            refused = RefusalWatch(resolver, app[METRICS])
            await refused.refresh()  # the metric is there before the first probe
            if TENANTS_RELOADER in app:  # a reload that changes an identity forgets it
                app[TENANTS_RELOADER].on_changed += [resolver.flush, refused.wake]
            # What Kubernetes is ready for is what discovery sees: the informer.
            with (
                (
                    checks.registered("kubernetes", _informer_check(informer))
                    if informer is not None
                    else contextlib.nullcontext()
                ),
                checks.registered("tenant_policies", refused.check),
            ):
                async with refused.running():
                    yield
            await resolver.aclose()
        finally:
            if informer is not None:
                await informer.aclose()
            await builder.aclose()
            await cache.aclose()

    return ctx


def _informer(settings: Settings, kube: KubeClient | None) -> ServiceAccountInformer | None:
    """The ServiceAccount informer discovery reads, when Kubernetes is there to watch."""
    if kube is None or not settings.identity.discover_from_kubernetes:
        return None
    # Here only: kubernetes-asyncio is loaded when Kubernetes is configured.
    from gateway.kube import InformerOptions

    return kube.service_account_informer(
        selectors=plans.ENABLED_SELECTORS,
        namespaces=list(settings.kubernetes.namespaces) or None,
        options=InformerOptions(
            watch_timeout_seconds=settings.kubernetes.watch_timeout_seconds,
            resync_seconds=settings.kubernetes.resync_seconds,
            fallback_ttl_seconds=settings.kubernetes.fallback_ttl_seconds,
        ),
    )


def doctor_ctx() -> Ctx:
    """The tenant doctor, over the identities context's resolver; none when a test replaced
    the resolver with one that cannot explain itself."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        resolver = app[IDENTITIES]
        if not isinstance(resolver, NamespaceResolver):
            yield
            return
        informer = app.get(INFORMER)
        app[DOCTOR] = doctor = Doctor(
            resolver,
            app[DATABRICKS_HTTP],
            kube=app.get(KUBE),
            discovered=informer.namespaces if informer is not None else tuple,
        )
        try:
            yield
        finally:
            await doctor.aclose()

    return ctx


def _informer_check(informer: ServiceAccountInformer) -> Check:
    async def check() -> tuple[bool, str]:
        status = informer.status
        return status.ready, f"ServiceAccount informer {status.mode}"

    return check
