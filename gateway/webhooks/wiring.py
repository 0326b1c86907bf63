"""The dispatcher's place in the application: its session, its task, its readiness check.

Its own module, so the composition root adds one line: ``webhooks_ctx`` opens the one
``ClientSession`` for webhook deliveries (guarded resolver, no proxy variables, no
redirects), starts the dispatcher after the run service, registers the ``webhooks`` check,
and on shutdown cancels the task and closes the session.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway import __version__
from gateway.appkeys import KUBE, METRICS, STORE, WEBHOOK_HTTP, WEBHOOKS
from gateway.httpsession import shared_session
from gateway.readiness import ReadinessChecks
from gateway.runs.types import utcnow
from gateway.settings import Settings
from gateway.tasks import stop
from gateway.webhooks.admin import WebhookAdmin
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.guard import Guard
from gateway.webhooks.keys import SigningKeys
from gateway.webhooks.resolver import GuardedResolver

if TYPE_CHECKING:
    from gateway.app import Overrides

Ctx = Callable[[web.Application], AsyncIterator[None]]


def webhooks_ctx(settings: Settings, over: Overrides, checks: ReadinessChecks) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        options = settings.webhooks
        guard = Guard.of(options.allow_networks, allow_http=options.allow_http)
        connector = aiohttp.TCPConnector(
            limit=options.max_concurrency,
            limit_per_host=options.max_per_endpoint,
            resolver=GuardedResolver(guard, over.webhook_resolver),
        )
        session = shared_session(
            connector=connector, user_agent=f"lakegate-webhooks/{__version__}", trust_env=False
        )
        kube = app.get(KUBE)
        environ = over.environ if over.environ is not None else os.environ
        keys = SigningKeys(kube.read_secret if kube is not None else None, environ)
        clock = over.clock or utcnow
        dispatcher = Dispatcher(
            store=app[STORE], session=session, settings=settings, keys=keys,
            metrics=app[METRICS], clock=clock,
        )  # fmt: skip
        app[WEBHOOK_HTTP] = session
        app[WEBHOOKS] = WebhookAdmin(app[STORE], clock=clock, nudge=dispatcher.nudge)
        task = (
            asyncio.create_task(dispatcher.run_forever(), name="webhooks")
            if over.run_dispatcher
            else None
        )

        async def check() -> tuple[bool, str]:
            if task is None:
                return True, "dispatcher off"
            running = not task.done()
            return running, "dispatching" if running else "stopped"

        try:
            with checks.registered("webhooks", check):
                yield
        finally:
            if task is not None:
                await stop(task)
            await keys.aclose()
            await session.close()

    return ctx
