"""The poller: follows every run Databricks knows about to its end, and finishes submissions.

Runs are polled by identity, not one by one. When any run of an identity is due, one
``runs/list?active_only=true`` walk (25 runs a page) refreshes every run of that identity at
once, and ``runs/get`` is asked only about runs that have left the active list (they ended,
and the list does not say how). Polling a few thousand active runs so costs a few list pages
per identity per interval instead of one call per run. The interval follows the age of the
group's youngest run (``model.next_poll_delay``), with jitter so groups do not align.

Most polls change nothing: the runs whose state held are rescheduled together, in one ledger
transaction per group (``Store.reschedule_runs``), so the ledger's writes grow with the number
of groups, not of runs. Only a run whose state changed gets a transaction of its own, through
``Store.transition``, with an outbox event when it ended.

SUBMITTING runs whose inline submission failed or was cut short by a crash are submitted
again with the same idempotency token, so Databricks answers with the run it may already have
created. At start-up every SUBMITTING run is made due at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from gateway.databricks.jobs import JobsClient
from gateway.databricks.wire import RunSnapshot
from gateway.errors import DatabricksRunNotFound, LakegateError
from gateway.identity.resolver import ResolvedIdentity
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import (
    REMOTE_ACTIVE_STATES,
    RunRecord,
    RunState,
    map_remote_status,
    next_poll_delay,
    reconcile,
    remote_state_message,
)
from gateway.runs.service import Clock, RunsService, utcnow
from gateway.runs.specs import finished_event
from gateway.settings import PollerSettings
from gateway.store.base import Reschedule, Store

log = get_logger(__name__)

FOLLOWED_STATES = frozenset({RunState.SUBMITTING, *REMOTE_ACTIVE_STATES})
# Below this many active runs in a group, one runs/get each is cheaper than a list walk.
LIST_THRESHOLD = 3
# Databricks' start_time may trail our created_at by queueing, and clocks differ.
START_TIME_SLACK = timedelta(minutes=10)


def _ref_key(run: RunRecord) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(run.identity_ref.items()))


class Poller:
    def __init__(
        self,
        *,
        store: Store,
        jobs: JobsClient,
        service: RunsService,
        settings: PollerSettings,
        metrics: Metrics,
        clock: Clock = utcnow,
        idle_seconds: float = 0.5,
        max_parallel_groups: int = 8,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._service = service
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._groups = asyncio.Semaphore(max_parallel_groups)
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    async def run_forever(self) -> None:
        await self.reconcile()
        while True:
            try:
                handled = await self.tick()
            except LakegateError as exc:
                log.error("poll_tick_failed", error=str(exc))
                handled = 0
            except Exception as exc:
                # One bad tick must not stop every run from being followed; the error is
                # logged (without a traceback, whose formatting would block the loop) and the
                # next tick comes after a pause, so a persistent bug cannot spin the CPU.
                log.error("poll_tick_crashed", error=repr(exc))
                await asyncio.sleep(self._settings.min_interval_seconds)
                continue
            if handled == 0:
                await asyncio.sleep(self._idle_seconds)

    async def reconcile(self) -> int:
        """Make every SUBMITTING run due now: a crash may have left it mid-submission."""
        now = self._clock()
        runs = await self._store.due_runs(
            now=datetime.max.replace(tzinfo=now.tzinfo),
            states=frozenset({RunState.SUBMITTING}),
            limit=1_000_000,
        )
        if runs:
            await self._store.reschedule_runs(
                [Reschedule(run.id, RunState.SUBMITTING, next_poll_at=now) for run in runs]
            )
            log.info("reconcile_submitting", count=len(runs))
        return len(runs)

    async def tick(self) -> int:
        """Handle every run due now; return how many were due."""
        now = self._clock()
        due = await self._store.due_runs(
            now=now, states=FOLLOWED_STATES, limit=self._settings.batch_size
        )
        if not due:
            return 0
        for run in due:
            if run.next_poll_at is not None:
                self._metrics.poll_lag.observe(max(0.0, (now - run.next_poll_at).total_seconds()))
        # A group is the runs of one namespace under one identity: those are listed together.
        groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
        for run in due:
            groups[(run.namespace, _ref_key(run))].append(run)
        async with asyncio.TaskGroup() as tasks:
            for runs in groups.values():
                tasks.create_task(self._guarded(runs))
        return len(due)

    async def _guarded(self, due: list[RunRecord]) -> None:
        async with self._groups:
            try:
                await self._poll_group(due)
            except LakegateError as exc:
                await self._postpone(due, f"polling failed: {exc}")

    async def _poll_group(self, due: list[RunRecord]) -> None:
        try:
            identity = await self._service.identity_of(due[0])
        except LakegateError as exc:
            await self._postpone(due, f"identity unavailable: {exc}")
            return
        submitting = [r for r in due if r.state is RunState.SUBMITTING]
        for run in submitting:
            await self._resubmit(run, identity)
        if len(submitting) < len(due):
            await self._refresh_group(identity, _ref_key(due[0]))

    async def _resubmit(self, run: RunRecord, identity: ResolvedIdentity) -> None:
        age = (self._clock() - run.created_at).total_seconds()
        if age > self._settings.submit_deadline_seconds:
            await self._service.give_up_submitting(
                run,
                f"Databricks did not confirm the submission within "
                f"{int(self._settings.submit_deadline_seconds)} s; last: {run.state_message}",
            )
            return
        updated = await self._service.submit_remote(run, identity, deadline=30.0)
        if updated.cancel_requested and updated.databricks_run_id is not None:
            await self._service.cancel_remote(updated)

    async def _refresh_group(self, identity: ResolvedIdentity, ref_key: str) -> None:
        """Refresh every active run of the group with as few calls as the group allows."""
        group = await self._store.list_runs(
            identity.namespace, states=REMOTE_ACTIVE_STATES, limit=100_000, before_id=None
        )
        group = [r for r in group if r.databricks_run_id is not None and _ref_key(r) == ref_key]
        if not group:
            return
        listed: dict[int, RunSnapshot] = {}
        if len(group) >= LIST_THRESHOLD:
            oldest = min(r.created_at for r in group) - START_TIME_SLACK
            async for snapshot in self._jobs.list_all(
                identity.workspace,
                identity.credential,
                active_only=True,
                run_type="SUBMIT_RUN",
                start_time_from=int(oldest.timestamp() * 1000),
            ):
                listed[snapshot.run_id] = snapshot
        # Runs that left the active list have ended (or never showed): ask about each, at
        # once; the Jobs client's per-host cap bounds how many calls are in flight.
        missing = [r for r in group if r.databricks_run_id not in listed]
        fetched = await asyncio.gather(*(self._get(identity, r) for r in missing))
        for found in fetched:
            if found is not None:
                listed[found.run_id] = found
        next_poll_at = self._clock() + timedelta(seconds=self._group_delay(group))
        seen = [
            (run, current)
            for run in group
            if (current := listed.get(run.databricks_run_id or 0)) is not None
        ]
        # The runs whose state held are rescheduled in one transaction; each run that moved
        # gets its own, through transition(), which also writes its history and outbox event.
        held: list[Reschedule] = []
        moved: list[tuple[RunRecord, RunSnapshot, RunState]] = []
        for run, snapshot in seen:
            target = reconcile(run.state, map_remote_status(snapshot.status))
            if target is None:
                held.append(
                    Reschedule(
                        run.id,
                        run.state,
                        next_poll_at=next_poll_at,
                        state_message=remote_state_message(snapshot.status) or run.state_message,
                        run_page_url=snapshot.run_page_url,
                    )
                )
            else:
                moved.append((run, snapshot, target))
        if held:
            await self._store.reschedule_runs(held)
        for run, snapshot, target in moved:
            await self._apply(run, snapshot, target, next_poll_at)
        for run, snapshot in seen:
            if run.cancel_requested and snapshot.status.life_cycle_state in ("PENDING", "RUNNING"):
                await self._service.cancel_remote(run)

    async def _get(self, identity: ResolvedIdentity, run: RunRecord) -> RunSnapshot | None:
        assert run.databricks_run_id is not None
        try:
            return await self._jobs.get(
                identity.workspace, identity.credential, run.databricks_run_id
            )
        except DatabricksRunNotFound:
            # Databricks deletes runs after 60 days; one we follow cannot come back.
            await self._finish(
                run, RunState.INTERNAL_ERROR, "Databricks no longer knows this run", None
            )
            return None

    async def _apply(
        self, run: RunRecord, snapshot: RunSnapshot, target: RunState, next_poll_at: datetime
    ) -> None:
        """Move a run whose remote state changed: its own transaction, CAS on what was seen."""
        message = remote_state_message(snapshot.status)
        if target.terminal:
            await self._finish(run, target, message, snapshot.run_page_url)
            return
        moved = await self._store.transition(
            run.id,
            target,
            expected=frozenset({run.state}),
            now=self._clock(),
            message=message,
            run_page_url=snapshot.run_page_url,
            next_poll_at=next_poll_at,
        )
        if moved is not None:
            self._metrics.transitions.labels(state=target.value).inc()

    async def _finish(
        self, run: RunRecord, state: RunState, message: str, run_page_url: str | None
    ) -> None:
        now = self._clock()
        final = dataclasses.replace(
            run, state=state, state_message=message, run_page_url=run_page_url or run.run_page_url
        )
        moved = await self._store.transition(
            run.id,
            state,
            expected=frozenset({run.state}),
            now=now,
            message=message,
            run_page_url=run_page_url,
            outbox_event=finished_event(final, at=now),
        )
        if moved is not None:
            self._metrics.transitions.labels(state=state.value).inc()
            log.info("run_finished", run_id=run.id, namespace=run.namespace, state=state.value)

    def _group_delay(self, group: Iterable[RunRecord]) -> float:
        now = self._clock()
        youngest = min((now - r.created_at).total_seconds() for r in group)
        return next_poll_delay(
            youngest,
            min_interval=self._settings.min_interval_seconds,
            max_interval=self._settings.max_interval_seconds,
            jitter=self._rng.random(),
        )

    async def _postpone(self, runs: Iterable[RunRecord], reason: str) -> None:
        now = self._clock()
        low = self._settings.min_interval_seconds
        await self._store.reschedule_runs(
            [
                Reschedule(
                    run.id,
                    run.state,
                    next_poll_at=now + timedelta(seconds=low * self._rng.uniform(1.0, 2.0)),
                    state_message=reason,
                )
                for run in runs
            ]
        )
        log.warning("poll_postponed", reason=reason)
