"""Run states and the forward-only state machine every write to the ledger is checked by."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[RunState] = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELED,
        RunState.SKIPPED,
        RunState.INTERNAL_ERROR,
        RunState.REJECTED,
    }
)
# Runs that Databricks knows about and that have not ended: the poller follows these.
REMOTE_ACTIVE_STATES: frozenset[RunState] = frozenset(
    {RunState.PENDING, RunState.RUNNING, RunState.TERMINATING}
)
# What counts against a namespace's active-runs quota: a run being submitted already holds a
# slot, or a burst of submissions could overshoot the limit before Databricks answers.
ACTIVE_STATES: frozenset[RunState] = REMOTE_ACTIVE_STATES | {RunState.SUBMITTING}


# --- the state machine ------------------------------------------------------------------------

_AFTER_SUBMISSION = TERMINAL_STATES - {RunState.REJECTED}

# Forward only. Any state may jump ahead to a later one, because a poll can miss the
# intermediate states of a fast run; REJECTED is the answer to a submission, so only runs that
# have not reached Databricks yet can end that way. A queued run never reached Databricks, so it
# is either submitted, canceled or refused.
_ALLOWED: Mapping[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.SUBMITTING, RunState.CANCELED, RunState.REJECTED}),
    RunState.SUBMITTING: REMOTE_ACTIVE_STATES | TERMINAL_STATES,
    RunState.PENDING: frozenset({RunState.RUNNING, RunState.TERMINATING}) | _AFTER_SUBMISSION,
    RunState.RUNNING: frozenset({RunState.TERMINATING}) | _AFTER_SUBMISSION,
    RunState.TERMINATING: _AFTER_SUBMISSION,
    **{state: frozenset() for state in TERMINAL_STATES},
}


class IllegalTransition(ValueError):
    """A move the run state machine forbids; it always means a bug in the caller."""

    def __init__(self, current: RunState, target: RunState) -> None:
        super().__init__(f"illegal run state transition {current} -> {target}")
        self.current = current
        self.target = target


def can_transition(current: RunState, target: RunState) -> bool:
    """Whether a run in ``current`` may move to ``target``; staying put is always allowed."""
    return current == target or target in _ALLOWED[current]


def transition(current: RunState, target: RunState) -> RunState:
    """The state after moving ``current`` to ``target``; raise IllegalTransition if forbidden."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target


def reconcile(current: RunState, observed: RunState) -> RunState | None:
    """The state to record when Databricks reports ``observed`` for a run held in ``current``.

    None when there is nothing to record: the same state, or a step back such as RUNNING to
    PENDING while a task waits for a retry. The ledger only moves forward, so a run that has
    reached a state keeps it until Databricks reports a later one.
    """
    if observed == current or not can_transition(current, observed):
        return None
    return observed
