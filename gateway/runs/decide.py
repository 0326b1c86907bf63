"""What a poll of one identity group means for each of its runs: pure, tested without a loop.

The poller asks Databricks about a group's active runs (one runs/list walk, then runs/get for
each run the walk did not show) and hands what it heard to ``decide``, keyed by Databricks
run id. Each run then falls in one of three places: its state held (rescheduled with the
others, one transaction for the lot), it moved (its own transaction, through the ledger), or
Databricks no longer knows it. A run whose cancellation was asked for and that Databricks
still runs also needs a cancel. The poller only carries these out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.databricks.wire import RunSnapshot
from gateway.model import RunRecord, RunState, map_remote_status, reconcile, remote_state_message
from gateway.store.base import Reschedule

# The life cycle states in which a cancel can still stop something: a run Databricks is
# terminating, or has ended, needs none.
CANCELLABLE = frozenset({"PENDING", "RUNNING"})


@dataclass(frozen=True, slots=True)
class Move:
    """A run whose remote state is a later one than the ledger holds."""

    run: RunRecord
    target: RunState
    snapshot: RunSnapshot

    @property
    def message(self) -> str:
        return remote_state_message(self.snapshot.status)


@dataclass(frozen=True, slots=True)
class GroupDecision:
    """Where each run of a polled group goes; every run is in at most one of the first three."""

    held: tuple[Reschedule, ...] = ()
    moved: tuple[Move, ...] = ()
    # Runs Databricks answered neither in the list nor to runs/get: it deleted them.
    missing: tuple[RunRecord, ...] = ()
    # Runs (held or moved) to cancel at Databricks, as their callers asked.
    cancel: tuple[RunRecord, ...] = ()


def walk_pages(listed: int, *, page_size: int) -> int:
    """How many runs/list pages a walk that showed ``listed`` runs took: a page that is not
    full is still a call, and a walk that showed nothing took one."""
    if listed < 0 or page_size < 1:
        raise ValueError("need listed >= 0 and page_size >= 1")
    return max(1, -(-listed // page_size))


def unlisted(group: Iterable[RunRecord], listed: Mapping[int, RunSnapshot]) -> list[RunRecord]:
    """The runs a runs/list walk did not show: they ended (or never showed), so ask each."""
    return [run for run in group if run.databricks_run_id not in listed]


def decide(
    group: Iterable[RunRecord],
    snapshots: Mapping[int, RunSnapshot],
    *,
    next_poll_at: datetime,
) -> GroupDecision:
    """Sort a group's runs by what Databricks said of them (``snapshots`` by its run id).

    A step back, or the same state, holds: ``model.reconcile`` only records a move forward.
    A held run keeps its message unless Databricks says something new about it.
    """
    held: list[Reschedule] = []
    moved: list[Move] = []
    missing: list[RunRecord] = []
    cancel: list[RunRecord] = []
    for run in group:
        snapshot = snapshots.get(run.databricks_run_id or 0)
        if snapshot is None:
            missing.append(run)
            continue
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
            moved.append(Move(run, target, snapshot))
        if run.cancel_requested and snapshot.status.life_cycle_state in CANCELLABLE:
            cancel.append(run)
    return GroupDecision(tuple(held), tuple(moved), tuple(missing), tuple(cancel))
