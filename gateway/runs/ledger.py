"""The one writer of runs: every change to a run the runs package makes goes through here.

``RunLedger`` is the only caller of ``Store.transition`` in the gateway. It finishes a run (a
terminal state, written in one transaction with its ``run.completed`` outbox event), advances
one (a remote state change that is not the end), records and defers submissions, and
reschedules or postpones the runs a poll left as they were. So it is also the one place that
counts the ``transitions`` metric and logs ``run_finished``, and a webhook dispatcher or an
audit log has a single seam to hang off.

New runs enter through ``accept``, which is ``Store.create_run``: admission (quotas) plugs in
there, as the ``admit`` callback the store calls inside the insert's transaction, so the
initial state (QUEUED or SUBMITTING) is decided with the namespace's usage at that instant.

A namespace whose webhooks ask for ``state_changes`` also gets a ``run.state_changed`` event
with every other transition (``advance``, ``record_submission``), in the same transaction.

Every write is a compare-and-set on the state the caller saw, fenced by this replica's id
(``owner``, see ``gateway.store.leases``): None back means someone else moved the run first, or
another replica took its claim over, and nothing was written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from gateway.errors import NotFound
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState
from gateway.runs.specs import completed_event, state_changed_event
from gateway.runs.types import Clock, utcnow
from gateway.settings.process import default_replica_id
from gateway.store.base import EVERY_USAGE, Admit, Fits, NewRun, Reschedule, Store, UsageNeeds

log = get_logger(__name__)


class RunLedger:
    """Writes runs through a ``Store``, counting and logging each state change once."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        clock: Clock = utcnow,
        state_changes: Callable[[str], bool] | None = None,
        owner: str | None = None,
    ) -> None:
        self._store = store
        # The replica every write is fenced as: the one whose claims the background holds.
        self.owner = owner or default_replica_id()
        self._metrics = metrics
        self._clock = clock
        # Called with each run the ledger ends: the admission queue wakes when capacity frees.
        self.on_finished: list[Callable[[RunRecord], None]] = []
        # Whether a namespace wants run.state_changed events; None: no namespace does.
        self._state_changes = state_changes

    async def accept(
        self, new: NewRun, *, admit: Admit | None = None, needs: UsageNeeds = EVERY_USAGE
    ) -> tuple[RunRecord, bool]:
        """Insert a run (or find the one its Idempotency-Key made); True when it is new.

        ``admit``, given by admission, chooses QUEUED or SUBMITTING inside the insert's
        transaction, from the usage ``needs`` names; see ``Store.create_run``.
        """
        return await self._store.create_run(new, self._clock(), admit=admit, needs=needs)

    async def admit(
        self, run: RunRecord, message: str, *, fits: Fits, needs: UsageNeeds = EVERY_USAGE
    ) -> RunRecord | None:
        """QUEUED to SUBMITTING if ``fits`` still holds, checked in the move's transaction
        (another replica may have admitted meanwhile) over what ``needs`` names; the poller
        submits it at once."""
        now = self._clock()
        moved = await self._store.promote_queued(
            run.id, now, owner=self.owner, fits=fits, message=message, needs=needs
        )
        if moved is not None:
            self._count(run, RunState.SUBMITTING, now)
            log.info("run_admitted", run_id=run.id, namespace=run.namespace)
        return moved

    async def finish(
        self, run: RunRecord, state: RunState, message: str, *, run_page_url: str | None = None
    ) -> RunRecord | None:
        """End ``run`` in ``state``, with its ``run.completed`` event, unless it moved meanwhile."""
        if not state.terminal:
            raise ValueError(f"{state} does not end a run; use advance()")
        now = self._clock()
        final = dataclasses.replace(
            run,
            state=state,
            state_message=message,
            run_page_url=run_page_url or run.run_page_url,
            updated_at=now,
        )
        moved = await self._store.transition(
            run.id,
            state,
            expected=frozenset({run.state}),
            now=now,
            message=message,
            run_page_url=run_page_url,
            outbox_event=completed_event(final, at=now),
            owner=self.owner,
        )
        if moved is not None:
            self._count(run, state, now)
            log.info("run_finished", run_id=run.id, namespace=run.namespace, state=state.value)
            for listener in self.on_finished:
                listener(moved)
        return moved

    async def advance(
        self,
        run: RunRecord,
        target: RunState,
        message: str,
        *,
        run_page_url: str | None,
        next_poll_at: datetime,
    ) -> RunRecord | None:
        """Move ``run`` to a later state that does not end it, as Databricks reported it."""
        if target.terminal:
            raise ValueError(f"{target} ends a run; use finish()")
        now = self._clock()
        moved = await self._store.transition(
            run.id,
            target,
            expected=frozenset({run.state}),
            now=now,
            message=message,
            run_page_url=run_page_url,
            next_poll_at=next_poll_at,
            outbox_event=self._changed(
                run, now, state=target, state_message=message,
                run_page_url=run_page_url or run.run_page_url,
            ),
            owner=self.owner,
        )  # fmt: skip
        if moved is not None:
            self._count(run, target, now)
        return moved

    async def record_submission(
        self, run: RunRecord, *, remote_id: int, host: str, first_poll_in: float
    ) -> RunRecord | None:
        """SUBMITTING to PENDING: Databricks took the run and calls it ``remote_id``."""
        now = self._clock()
        moved = await self._store.transition(
            run.id,
            RunState.PENDING,
            expected=frozenset({RunState.SUBMITTING}),
            now=now,
            message="submitted to Databricks",
            databricks_run_id=remote_id,
            databricks_host=host,
            next_poll_at=now + timedelta(seconds=first_poll_in),
            outbox_event=self._changed(
                run, now, state=RunState.PENDING, state_message="submitted to Databricks",
                databricks_run_id=remote_id,
            ),
            owner=self.owner,
        )  # fmt: skip
        if moved is not None:
            self._count(run, RunState.PENDING, now)
            log.info("run_submitted", run_id=run.id, namespace=run.namespace, remote_id=remote_id)
        return moved

    async def defer_submission(
        self, run: RunRecord, *, attempts: int, next_poll_at: datetime, message: str
    ) -> RunRecord | None:
        """Keep ``run`` SUBMITTING and try again at ``next_poll_at``; not a state change."""
        return await self._store.update_run(
            run.id, next_poll_at=next_poll_at, attempts=attempts, state_message=message,
            owner=self.owner,
        )  # fmt: skip

    async def reschedule(self, updates: Collection[Reschedule]) -> int:
        """Poll again the runs whose state held, all in one transaction; how many were."""
        if not updates:
            return 0
        return await self._store.reschedule_runs(updates, owner=self.owner)

    async def postpone(
        self, runs: Iterable[RunRecord], reason: str, *, delay: Callable[[], float]
    ) -> int:
        """Put off runs that could not be polled; ``delay`` draws each one's wait in seconds."""
        now = self._clock()
        updates = [
            Reschedule(
                run.id,
                run.state,
                next_poll_at=now + timedelta(seconds=delay()),
                state_message=reason,
            )
            for run in runs
        ]
        count = await self.reschedule(updates)
        log.warning("poll_postponed", reason=reason)
        return count

    async def request_cancel(self, namespace: str, run_id: int) -> RunRecord | None:
        """Flag the namespace's run for cancellation; None if it has no such run."""
        return await self._store.request_cancel(namespace, run_id, now=self._clock())

    async def current(self, run: RunRecord) -> RunRecord:
        """The run as the ledger holds it now, with its history: after a write lost a race."""
        fresh = await self._store.get_run(run.namespace, run.id, with_history=True)
        if fresh is None:  # pragma: no cover - runs are never deleted
            raise NotFound(f"run {run.id} vanished from the ledger")
        return fresh

    def _changed(self, run: RunRecord, now: datetime, **change: Any) -> dict[str, Any] | None:
        """The run.state_changed event for ``run`` after ``change``, if its namespace wants it."""
        if self._state_changes is None or not self._state_changes(run.namespace):
            return None
        return state_changed_event(dataclasses.replace(run, updated_at=now, **change), at=now)

    def _count(self, run: RunRecord, state: RunState, now: datetime) -> None:
        lived = (now - run.created_at).total_seconds()
        self._metrics.observe_transition(run.namespace, state.value, state.terminal, lived)
