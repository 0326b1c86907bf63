"""The run ledger's contract: what the runs package may ask of a store.

In the gateway every write goes through ``gateway.runs.ledger.RunLedger`` (the only caller
of ``transition``); the run service, the submitter and the poller only read directly. Every
backend (SQLite now, PostgreSQL later) keeps these promises and passes the same test
suite, ``tests/store``. The promises that matter most:

- A run is durable, in QUEUED or SUBMITTING, before anyone calls Databricks about it, and its
  id is what the Databricks idempotency token is made from (with ``installation_id``).
- Every state change is a compare-and-set validated by ``gateway.model.transition``, recorded
  in the run's history, and written in one transaction with the outbox row it produces.
- The ledger never holds a credential: there is no column for one, and callers must not put a
  token in a spec, a label, a message or an outbox payload.
- Reads are scoped by namespace wherever a caller's request leads to them; only the poller,
  which acts for no caller, reads a run by id alone.
- Replicas share the background work by leases (``gateway.store.leases``): a claim gives a
  run to one replica until its lease runs out, and a write given ``owner`` is fenced: it does
  nothing to a run another replica has claimed since.

Timestamps go in and come out timezone-aware (UTC out); a naive datetime is refused with
ValueError. Backend failures surface as ``gateway.errors.StoreError`` and nothing else;
programming errors (an illegal transition, a bad argument) stay ValueErrors.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.model import NamespaceUsage, RunRecord, RunState
from gateway.store.leases import Fits, LeaseStore
from gateway.store.outbox import (
    DisabledEndpoint,
    OutboxEntry,
    OutboxStore,
    Settle,
    Settlement,
)
from gateway.store.usage import EVERY_USAGE, Admission, Admit, RateRule, UsageNeeds, UsageWanted

INITIAL_STATES: frozenset[RunState] = frozenset({RunState.QUEUED, RunState.SUBMITTING})


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to insert: everything the caller decides before the ledger assigns an id."""

    namespace: str
    # A JSON object as a decoder gives one (string keys, lists, no tuples): it reads back
    # from the ledger's text as itself.
    spec: Mapping[str, Any]
    request_fingerprint: str
    workspace: str
    state: RunState = RunState.SUBMITTING
    idempotency_key: str | None = None
    databricks_host: str | None = None
    callback_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    identity_ref: Mapping[str, str] = field(default_factory=dict)
    principal: Mapping[str, str] = field(default_factory=dict)
    next_poll_at: datetime | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.state not in INITIAL_STATES:
            raise ValueError(f"a run starts QUEUED or SUBMITTING, not {self.state}")


@dataclass(frozen=True, slots=True)
class Reschedule:
    """When to poll a run next, and what the last poll saw, for a run whose state held.

    Applied only while the run is still in ``state``; None leaves ``state_message`` or
    ``run_page_url`` as it is.
    """

    run_id: int
    state: RunState
    next_poll_at: datetime
    state_message: str | None = None
    run_page_url: str | None = None

    def due_state(self) -> RunState:
        """``state`` as a RunState; ValueError for an ended one, which is never due."""
        state = RunState(self.state)
        if state.terminal:
            raise ValueError(f"run {self.run_id}: an ended run ({state}) is never due")
        return state


class Store(OutboxStore, LeaseStore, Protocol):
    """The durable run ledger. One instance per process, opened once and closed once."""

    @property
    def installation_id(self) -> str:
        """Random, made once per ledger by its first migration; StoreError before open()."""
        ...

    @property
    def commits(self) -> tuple[int, int]:
        """Write transactions committed since open(), and the writes they carried: more writes
        than commits when the ledger commits concurrent writes together. (0, 0) when closed."""
        ...

    async def open(self) -> None:
        """Connect and apply pending migrations in order; opening an open store does nothing."""
        ...

    async def close(self) -> None:
        """Release the connection; closing twice, or a store never opened, does nothing."""
        ...

    async def ping(self) -> None:
        """Return if the ledger is the one opened and takes a write; else StoreError, why."""
        ...

    async def create_run(
        self,
        new: NewRun,
        now: datetime,
        *,
        admit: Admit | None = None,
        needs: UsageNeeds = EVERY_USAGE,
    ) -> tuple[RunRecord, bool]:
        """Insert a run with its first history entry; return it and whether it was created.

        With an ``idempotency_key``, a second request with the same key in the same namespace
        returns the existing run and False when its ``request_fingerprint`` matches (even if the
        namespace is over quota by now), and raises ``gateway.errors.Conflict`` when it does
        not. ``admit``, when given, chooses the initial state instead of ``new.state``, in the
        same transaction as the insert, so concurrent submissions cannot overshoot a quota;
        it sees the usage ``needs`` names (what it does not need is not read).
        Ids are positive int64s, increasing, never reused.
        """
        ...

    async def get_run(
        self, namespace: str, run_id: int, *, with_history: bool = False
    ) -> RunRecord | None:
        """The run, or None if there is none with this id in this namespace."""
        ...

    async def get_run_by_id(self, run_id: int, *, with_history: bool = False) -> RunRecord | None:
        """The run whatever its namespace: for the poller and operators only."""
        ...

    async def get_run_by_remote_id(
        self, namespace: str, databricks_run_id: int
    ) -> RunRecord | None:
        """The namespace's run that Databricks knows as ``databricks_run_id``, or None."""
        ...

    async def get_run_by_idempotency_key(self, namespace: str, key: str) -> RunRecord | None:
        """The namespace's run created by a request with Idempotency-Key ``key``, or None.

        The runs service answers a replay from this before it resolves any identity;
        ``create_run`` still decides, in its own transaction, between two first requests.
        """
        ...

    async def active_runs_of_group(
        self, namespace: str, identity_ref: Mapping[str, str]
    ) -> list[RunRecord]:
        """The runs of one identity group that Databricks is running, newest first.

        A group is the namespace's runs submitted under one identity choice (``identity_ref``
        as the run holds it; {} for the namespace's own identity). Only runs in PENDING,
        RUNNING or TERMINATING with a ``databricks_run_id`` are returned, without history:
        the poller refreshes them together with one runs/list walk.
        """
        ...

    async def list_runs(
        self,
        namespace: str,
        *,
        states: Collection[RunState] | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[RunRecord]:
        """Up to ``limit`` runs of the namespace, newest first, with ids below ``before_id``.

        Pass the last id of a page as ``before_id`` to get the next. History is not loaded.
        """
        ...

    async def transition(
        self,
        run_id: int,
        to_state: RunState,
        *,
        expected: Collection[RunState],
        now: datetime,
        message: str = "",
        databricks_run_id: int | None = None,
        databricks_host: str | None = None,
        run_page_url: str | None = None,
        next_poll_at: datetime | None = None,
        outbox_event: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> RunRecord | None:
        """Move the run to ``to_state`` if it is in one of ``expected``; return the new record.

        None when the run does not exist, its state is not in ``expected`` (someone else got there
        first) or ``owner`` is fenced off (``gateway.store.leases``): nothing is written.
        ``gateway.model.IllegalTransition`` when the state matches but the move is forbidden. On
        success, in one transaction: the state, ``message`` as the state message, the given
        optional fields (None leaves a field as it is), a history entry, and an outbox row for
        ``outbox_event``: the event as the webhook dispatcher will send it, JSON-serialisable, with
        a string ``"type"`` (ValueError or TypeError before anything is written otherwise). A
        terminal state clears ``next_poll_at``: an ended run is never due. Moving to the state the
        run is already in updates the fields but records no history and writes no outbox row.
        """
        ...

    async def update_run(
        self,
        run_id: int,
        *,
        now: datetime | None = None,
        next_poll_at: datetime | None = None,
        attempts: int | None = None,
        add_attempts: int = 0,
        state_message: str | None = None,
        run_page_url: str | None = None,
        owner: str | None = None,
    ) -> RunRecord | None:
        """Bookkeeping that is not a state change; None if the run does not exist (or
        ``owner`` is fenced off, and nothing is written).

        None leaves a field as it is. ``attempts`` sets the counter and ``add_attempts`` then
        adds to it atomically, so concurrent increments are never lost. ``next_poll_at`` is
        ignored for an ended run. ``updated_at`` moves to ``now`` only when it is given, so
        routine polling does not make a run look recently changed.
        """
        ...

    async def reschedule_runs(
        self, updates: Collection[Reschedule], *, owner: str | None = None
    ) -> int:
        """Apply many ``Reschedule``s in one transaction; return how many runs were updated.

        The poller's bookkeeping after a poll that changed no run's state: one write for a
        whole group of runs instead of one per run. A run no longer in the update's ``state``
        (it moved on meanwhile), that ``owner`` is fenced off from or that does not exist is
        left alone and not counted.
        ``updated_at`` does not move. An update naming a terminal ``state`` is a caller bug
        (an ended run is never due): ValueError before anything is written.
        """
        ...

    async def due_runs(
        self, now: datetime, *, states: Collection[RunState], limit: int
    ) -> list[RunRecord]:
        """Runs in ``states`` whose ``next_poll_at`` is at or before ``now``, most overdue first.

        A run without ``next_poll_at`` is never due. This only reads, whoever holds the runs:
        work shared by replicas is claimed with ``claim_due_runs`` instead.
        """
        ...

    async def request_cancel(self, namespace: str, run_id: int, now: datetime) -> RunRecord | None:
        """Flag the run for cancellation and make it due now; None if not in this namespace.

        An ended run is returned unchanged. Only the first request makes the run due, so a
        caller repeating it cannot hurry the poller past its backoff. The store only records
        the wish: the runs service or the poller carries it out.
        """
        ...

    async def count_runs(self, namespace: str, states: Collection[RunState] | None = None) -> int:
        """How many runs the namespace has in ``states`` (in any state when None)."""
        ...

    async def counts_by_namespace_state(
        self, states: Collection[RunState] | None = None
    ) -> dict[tuple[str, RunState], int]:
        """Run counts per (namespace, state), for metrics; pairs with no runs are absent."""
        ...

    async def usage(self, namespace: str, workspace: str, now: datetime) -> NamespaceUsage:
        """The namespace's usage as ``create_run``'s ``admit`` would see it at ``now``, with
        every figure read (``EVERY_USAGE``).

        Active and queued counts, the active runs of every namespace on ``workspace``, the
        creation times of the namespace's latest runs (newest first, within the last hour)
        and the mean time from creation to end of its runs created in the last day, and its
        ``run_seconds``: each run's time from SUBMITTING to its end (or ``now``) within the
        24 hours before ``now``, summed.
        """
        ...

    async def run_spans(
        self, namespace: str, now: datetime
    ) -> list[tuple[datetime, datetime | None]]:
        """(became SUBMITTING, ended or None) of the namespace's runs active in the last day.

        What ``run_seconds`` sums, run by run, for working out when it falls under a budget.
        """
        ...

    async def run_seconds(self, namespaces: Collection[str], now: datetime) -> dict[str, float]:
        """``usage(...).run_seconds`` of each of ``namespaces`` (0.0 for one without runs)."""
        ...

    async def queued_heads(self, per_namespace: int) -> list[RunRecord]:
        """The oldest ``per_namespace`` QUEUED runs of every namespace, by namespace then id.

        The admission queue's heads: the queue is the ledger, so it survives restarts.
        History is not loaded. ValueError when ``per_namespace`` is below 1.
        """
        ...

    async def active_counts(self) -> dict[tuple[str, str], int]:
        """Active runs (SUBMITTING to TERMINATING) per (workspace, namespace); none: absent."""
        ...

    async def queue_counts(
        self,
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """QUEUED runs and active runs per (workspace, namespace), from one snapshot.

        What an admission pass reads first: from counts alone it can tell which namespaces
        could admit, and read the heads of those only (``queued_heads_of``).
        """
        ...

    async def queued_heads_of(
        self, namespaces: Collection[str], per_namespace: int
    ) -> list[RunRecord]:
        """``queued_heads`` restricted to ``namespaces``; [] for none."""
        ...


__all__ = [
    "EVERY_USAGE",
    "INITIAL_STATES",
    "Admission",
    "Admit",
    "DisabledEndpoint",
    "Fits",
    "LeaseStore",
    "NewRun",
    "OutboxEntry",
    "RateRule",
    "Reschedule",
    "Settle",
    "Settlement",
    "Store",
    "UsageNeeds",
    "UsageWanted",
]
