"""The callers context: authentication methods, grants, the HTTP session for JWT issuers'
keys, and the SIGHUP reload of the ``callers`` section and the tenants file."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web

from gateway import __version__
from gateway.app.overrides import Ctx, Overrides
from gateway.appkeys import (
    CALLERS,
    JWKS_HTTP,
    KUBE,
    TENANTS_RELOADER,
)
from gateway.callers import CallerGate
from gateway.errors import LakegateError
from gateway.httpsession import shared_session
from gateway.logs import get_logger
from gateway.settings import Settings
from gateway.settings.reload import TenantsReloader

log = get_logger(__name__)


def callers_ctx(settings: Settings, over: Overrides) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # The one session for JWT issuers' discovery documents and key sets; it opens no
        # connection until a JWT from a configured issuer arrives.
        session = shared_session(user_agent=f"lakegate/{__version__}", trust_env=True)
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
