"""The poller: follows every run Databricks knows about to its end, and finishes submissions.

Runs are polled by identity, not one by one. When any run of an identity is due, one
``runs/list?active_only=true`` walk (25 runs a page) refreshes every run of that identity at
once, and runs that have left the active list (they ended, and the list does not say how)
are asked about with ``runs/get``, or, when more than a page's worth ended, read from one
``completed_only`` walk that stops once it has shown them all. Polling a few thousand active
runs so costs a few list pages per identity per interval instead of one call per run. The
group's runs come from one store query that leases them (``Store.claim_group``). The interval
follows the age of the group's youngest run (``model.next_poll_delay``), with jitter so
groups do not align, and is at least one shortest interval per page the walk took: a group
costs at most one page per shortest interval, so the calls per run fall as groups grow. At
start-up every followed run is due at once, so a restart is caught up with one walk per
group.

What a poll means for each run is decided by a pure function (``runs.decide``); the poller
only carries it out through the ``RunLedger``. Most polls change nothing: the runs whose state
held are rescheduled together, in one ledger transaction per group, so the ledger's writes
grow with the number of groups, not of runs. Only a run whose state changed gets a
transaction of its own, with an outbox event when it ended.

SUBMITTING runs whose inline submission failed or was cut short by a crash are submitted
again with the same idempotency token, so Databricks answers with the run it may already have
created. The remote half (identities,
submitting, cancelling) is a ``RunSubmitter``; the poller never calls the run service.

Every replica on a ledger runs a poller, and they share the runs by claiming them
(``runs.leases``): a tick claims the due runs, a group's refresh claims the group's other runs
that no replica holds, and each claim is renewed while its poll lasts and released after it.
A run is so polled by one replica at a time, and a dead replica's runs are polled by the
others once its leases run out.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from gateway.databricks.budgets import acting_for
from gateway.databricks.jobs import MAX_LIST_LIMIT, JobsClient
from gateway.databricks.wire import RunSnapshot
from gateway.errors import DatabricksRunNotFound, LakegateError
from gateway.identity.principal import group_key, same
from gateway.identity.resolver import ResolvedIdentity
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import (
    REMOTE_ACTIVE_STATES,
    RunRecord,
    RunState,
    next_poll_delay,
    postpone_delay,
)
from gateway.runs.decide import Move, decide, unlisted, walk_pages
from gateway.runs.leases import Claims
from gateway.runs.ledger import RunLedger
from gateway.runs.types import Clock, RunSubmitter, utcnow
from gateway.settings import PollerSettings
from gateway.store.base import Reschedule, Store

log = get_logger(__name__)

FOLLOWED_STATES = frozenset({RunState.SUBMITTING, *REMOTE_ACTIVE_STATES})
# Below this many active runs in a group, one runs/get each is cheaper than a list walk.
LIST_THRESHOLD = 3
# More ended runs than a page's worth and one completed_only walk costs less than a runs/get
# each (a group's runs often end together: one job's fan-out, a restart after a long stop).
ENDED_WALK_THRESHOLD = MAX_LIST_LIMIT
# How many moved runs of one group are written at once (each its own transaction).
MOVES_IN_FLIGHT = 64
# Databricks' start_time may trail our created_at by queueing, and clocks differ.
START_TIME_SLACK = timedelta(minutes=10)
# How long a background resubmission waits for Databricks before deferring again.
RESUBMIT_DEADLINE_SECONDS = 30.0
# How long one group's poll may hold the tick: the other groups wait for the next tick.
GROUP_DEADLINE_SECONDS = 45.0


def _group_key(run: RunRecord) -> tuple[str, str, str]:
    """The namespace, the identity choice and the principal the run was created as: runs of
    one principal are listed together, and never with another principal's token."""
    return group_key(run.namespace, run.identity_ref, run.principal)


class Poller:
    """The background loop: due runs by identity group, each group's decision carried out."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: RunLedger,
        jobs: JobsClient,
        submitter: RunSubmitter,
        settings: PollerSettings,
        metrics: Metrics,
        claims: Claims | None = None,
        clock: Clock = utcnow,
        idle_seconds: float = 0.5,
        max_parallel_groups: int = 8,
        rng: random.Random | None = None,
        group_deadline: float = GROUP_DEADLINE_SECONDS,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._jobs = jobs
        self._submitter = submitter
        self._settings = settings
        self._metrics = metrics
        self._claims = claims or Claims(store, ledger.owner, clock=clock)
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._groups = asyncio.Semaphore(max_parallel_groups)
        self._group_deadline = group_deadline
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

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
        """Make every followed run due now: what Databricks did while no poller ran (or this
        replica was down) is learnt at once, one walk per group, not over the next interval;
        a SUBMITTING run may also have been left mid-submission by a crash."""
        now = self._clock()
        runs = await self._store.due_runs(
            now=datetime.max.replace(tzinfo=now.tzinfo), states=FOLLOWED_STATES, limit=1_000_000
        )
        if runs:
            # Unfenced (owner None): a run keeps the id of the replica that last polled it,
            # which after a restart is this process's predecessor, and the fenced write would
            # skip every such run, leaving it to its old next poll. Making a run due is no
            # state change; at worst a replica polling it now polls it once more.
            await self._store.reschedule_runs(
                [Reschedule(run.id, run.state, next_poll_at=now) for run in runs], owner=None
            )
            log.info("reconcile_followed", count=len(runs))
        return len(runs)

    async def tick(self) -> int:
        """Claim the runs due now and handle them; return how many were claimed."""
        now = self._clock()
        due = await self._store.claim_due_runs(
            now,
            owner=self._claims.owner,
            lease_seconds=self._claims.lease_seconds,
            states=FOLLOWED_STATES,
            limit=self._settings.batch_size,
        )
        if not due:
            return 0
        for run in due:
            if run.next_poll_at is not None:
                self._metrics.poll_lag.observe(max(0.0, (now - run.next_poll_at).total_seconds()))
        # A group is the runs of one namespace under one identity: those are listed together.
        groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
        for run in due:
            groups[_group_key(run)].append(run)
        async with asyncio.TaskGroup() as tasks:
            for runs in groups.values():
                tasks.create_task(self._guarded(runs))
        return len(due)

    async def _guarded(self, due: list[RunRecord]) -> None:
        """Poll one group; whatever it raises or however long it hangs stays its own.

        The group's runs are postponed with the reason, and no error leaves: in a TaskGroup
        one escaping exception would cancel every other namespace's poll of the tick.
        """
        async with self._groups, self._claims.holding([run.id for run in due]):
            try:
                async with asyncio.timeout(self._group_deadline):
                    with acting_for(due[0].namespace):  # the namespace's share of budgets
                        await self._poll_group(due)
            except LakegateError as exc:
                await self._postpone(due, f"polling failed: {exc}")
            except TimeoutError:
                await self._postpone(
                    due, f"polling did not finish within {self._group_deadline:g} s"
                )
            except Exception as exc:
                log.error(
                    "poll_group_crashed",
                    namespace=due[0].namespace,
                    runs=len(due),
                    error=type(exc).__name__,
                )
                await self._postpone(due, f"polling failed ({type(exc).__name__})")

    async def _poll_group(self, due: list[RunRecord]) -> None:
        try:
            identity = await self._submitter.identity_of(due[0])
        except LakegateError as exc:
            await self._postpone(due, f"identity unavailable: {exc}")
            return
        submitting = [r for r in due if r.state is RunState.SUBMITTING]
        for run in submitting:
            await self._resubmit(run, identity)
        if len(submitting) < len(due):
            await self._refresh_group(identity, due[0].identity_ref)

    async def _resubmit(self, run: RunRecord, identity: ResolvedIdentity) -> None:
        # Since it became SUBMITTING (updated_at): a run may have waited QUEUED before.
        age = (self._clock() - run.updated_at).total_seconds()
        if age > self._settings.submit_deadline_seconds:
            await self._submitter.give_up_submitting(
                run,
                f"Databricks did not confirm the submission within "
                f"{int(self._settings.submit_deadline_seconds)} s; last: {run.state_message}",
            )
            return
        updated = await self._submitter.submit_remote(
            run, identity, deadline=RESUBMIT_DEADLINE_SECONDS
        )
        if updated.cancel_requested and updated.databricks_run_id is not None:
            await self._submitter.cancel_remote(updated)

    async def _refresh_group(
        self, identity: ResolvedIdentity, identity_ref: Mapping[str, str]
    ) -> None:
        """Refresh the group's active runs no other replica holds, with as few calls as it
        allows; they stay claimed while they are refreshed."""
        group = await self._store.claim_group(
            identity.namespace,
            identity_ref,
            self._clock(),
            owner=self._claims.owner,
            lease_seconds=self._claims.lease_seconds,
        )
        async with self._claims.holding([run.id for run in group]):
            await self._refresh(identity, group)

    async def _refresh(self, identity: ResolvedIdentity, group: list[RunRecord]) -> None:
        if identity.principal is not None:
            # Runs of the same choice created as another principal (before the namespace's
            # policy or default identity changed) wait for theirs: see Submitter.identity_of.
            group = [r for r in group if same(r.principal, identity.principal)]
        if not group:
            return
        snapshots = await self._listed(identity, group)
        # The walk's pages set the group's pace (see model.next_poll_delay).
        pages = walk_pages(len(snapshots), page_size=MAX_LIST_LIMIT)
        snapshots.update(await self._ended(identity, unlisted(group, snapshots)))
        next_poll_at = self._clock() + timedelta(seconds=self._group_delay(group, pages))
        decision = decide(group, snapshots, next_poll_at=next_poll_at)
        for run in decision.missing:
            # Databricks deletes runs after 60 days; one we follow cannot come back.
            await self._ledger.finish(
                run, RunState.INTERNAL_ERROR, "Databricks no longer knows this run"
            )
        await self._ledger.reschedule(decision.held)
        await self._apply_all(decision.moved, next_poll_at)
        for run in decision.cancel:
            await self._submitter.cancel_remote(run)

    async def _listed(
        self, identity: ResolvedIdentity, group: list[RunRecord]
    ) -> dict[int, RunSnapshot]:
        """What one runs/list walk says of the group; nothing for a group too small to list."""
        listed: dict[int, RunSnapshot] = {}
        if len(group) < LIST_THRESHOLD:
            return listed
        oldest = min(r.created_at for r in group) - START_TIME_SLACK
        async for snapshot in self._jobs.list_all(
            identity.workspace,
            identity.credential,
            active_only=True,
            run_type="SUBMIT_RUN",
            start_time_from=int(oldest.timestamp() * 1000),
        ):
            listed[snapshot.run_id] = snapshot
        return listed

    async def _ended(
        self, identity: ResolvedIdentity, runs: list[RunRecord]
    ) -> dict[int, RunSnapshot]:
        """What Databricks says of runs that left the active list (they ended, or never
        showed). Many of them are read from one ``completed_only`` walk, newest first, that
        stops once it has shown them all; each run it did not show is one runs/get, at once
        (the Jobs client's per-host cap bounds how many are in flight)."""
        found: dict[int, RunSnapshot] = {}
        if len(runs) > ENDED_WALK_THRESHOLD:
            wanted = {run.databricks_run_id for run in runs}
            oldest = min(r.created_at for r in runs) - START_TIME_SLACK
            walk = self._jobs.list_all(
                identity.workspace,
                identity.credential,
                completed_only=True,
                run_type="SUBMIT_RUN",
                start_time_from=int(oldest.timestamp() * 1000),
            )
            try:
                async for snapshot in walk:
                    if snapshot.run_id in wanted:
                        found[snapshot.run_id] = snapshot
                        if len(found) == len(wanted):
                            break
            finally:
                await walk.aclose()
        rest = [run for run in runs if run.databricks_run_id not in found]
        fetched = await asyncio.gather(*(self._get(identity, run) for run in rest))
        found.update((snapshot.run_id, snapshot) for snapshot in fetched if snapshot is not None)
        return found

    async def _get(self, identity: ResolvedIdentity, run: RunRecord) -> RunSnapshot | None:
        """runs/get for one run; None when Databricks no longer knows it."""
        assert run.databricks_run_id is not None
        try:
            return await self._jobs.get(
                identity.workspace, identity.credential, run.databricks_run_id
            )
        except DatabricksRunNotFound:
            return None

    async def _apply_all(self, moves: Iterable[Move], next_poll_at: datetime) -> None:
        """Record every move, a bounded number at once: each is its own transaction, and a
        ledger that commits concurrent writes together (one fsync a batch) then spends one
        fsync on many, where one after another a restart that finds 5,000 runs moved spends
        5,000. Every move is tried; the first failure is raised after the others finished."""
        gate = asyncio.Semaphore(MOVES_IN_FLIGHT)

        async def apply(move: Move) -> None:
            async with gate:
                await self._apply(move, next_poll_at)

        outcomes = await asyncio.gather(*(apply(m) for m in moves), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _apply(self, move: Move, next_poll_at: datetime) -> None:
        """Record a run whose remote state changed: its own transaction, CAS on what was seen."""
        url = move.snapshot.run_page_url
        if move.target.terminal:
            await self._ledger.finish(move.run, move.target, move.message, run_page_url=url)
        else:
            await self._ledger.advance(
                move.run, move.target, move.message, run_page_url=url, next_poll_at=next_poll_at
            )

    def _group_delay(self, group: Iterable[RunRecord], pages: int) -> float:
        now = self._clock()
        youngest = min((now - r.created_at).total_seconds() for r in group)
        return next_poll_delay(
            youngest,
            min_interval=self._settings.min_interval_seconds,
            max_interval=self._settings.max_interval_seconds,
            jitter=self._rng.random(),
            pages=pages,
        )

    async def _postpone(self, runs: Iterable[RunRecord], reason: str) -> None:
        low = self._settings.min_interval_seconds
        await self._ledger.postpone(
            runs, reason, delay=lambda: postpone_delay(low, jitter=self._rng.random())
        )
