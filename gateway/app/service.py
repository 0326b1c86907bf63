"""The run service and the background tasks (poller, run gauges), cancelled and awaited on
shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.app.overrides import Ctx, Overrides
from gateway.appkeys import (
    ADMITTER,
    DATABRICKS_HTTP,
    IDENTITIES,
    METRICS,
    POLLER,
    QUOTA,
    REMOTE_RUNS,
    RUNS,
    SERVICE,
    STORE,
    TASKS,
)
from gateway.databricks.budgets import RequestBudgets
from gateway.databricks.jobs import JobsClient
from gateway.errors import LakegateError
from gateway.logs import get_logger
from gateway.model import RunState
from gateway.readiness import ReadinessChecks, task_check
from gateway.runs.types import utcnow
from gateway.runs.wiring import wire_runs
from gateway.settings import Settings
from gateway.tasks import stop

log = get_logger(__name__)

METRICS_REFRESH_SECONDS = 15.0
NOT_ENDED = frozenset(s for s in RunState if not s.terminal)


def service_ctx(settings: Settings, over: Overrides) -> Ctx:
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


def background_ctx(over: Overrides, checks: ReadinessChecks) -> Ctx:
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
            await stop(*tasks)
            tasks.clear()

    return ctx


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
