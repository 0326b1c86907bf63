"""The composition root's resources for tenant policy: the admission queue, live reload.

Each is one ``cleanup_ctx`` generator that ``gateway.app.create_app`` appends, and each
registers its readiness check beside the task it checks, as every resource there does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.appkeys import ADMITTER
from gateway.readiness import Check, ReadinessChecks
from gateway.settings.reload import TenantsReloader
from gateway.tasks import stop

Ctx = Callable[[web.Application], AsyncIterator[None]]


def _task_check(task: asyncio.Task[None]) -> Check:
    async def check() -> tuple[bool, str]:
        running = not task.done()
        return running, "running" if running else "stopped"

    return check


def tenants_ctx(reloader: TenantsReloader, checks: ReadinessChecks) -> Ctx:
    """Watch the tenants file and swap in each new policy that validates."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(reloader.watch_forever(), name="tenants-reload")
        try:
            with checks.registered("tenants", reloader.check):
                yield
        finally:
            await stop(task)

    return ctx


def admission_ctx(run: bool, checks: ReadinessChecks) -> Ctx:
    """The admission queue's task (with the poller: QUEUED runs wait for both to go)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not run:
            yield
            return
        task = asyncio.create_task(app[ADMITTER].run_forever(), name="admission")
        try:
            with checks.registered("admission", _task_check(task)):
                yield
        finally:
            await stop(task)

    return ctx
