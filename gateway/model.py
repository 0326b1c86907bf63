"""The pure domain: run states, the run record, and what Databricks says about a run.

Nothing here does I/O or imports anything of ours; every function is tested without a loop.
The state machine and the mapping from Databricks' states live here (``transition``,
``map_remote_status``), so the poller, the service and the store only apply what this module
decides.

What each terminal state promises a scheduler:

    SUCCEEDED       the run ended successfully (Databricks SUCCESS or SUCCESS_WITH_FAILURES)
    FAILED          the run, or its configuration, failed: the tenant's to fix
    TIMED_OUT       the run exceeded its timeout
    CANCELED        a user, the gateway or the platform canceled it
    SKIPPED         Databricks never executed it (disabled, excluded, a run or queue limit)
    INTERNAL_ERROR  the platform or the cloud failed, not the job; trying again may succeed
    REJECTED        Databricks, or the gateway before submitting, refused the run for good
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """What Databricks reports about a run: the legacy ``state`` and the newer ``status``.

    An empty ``life_cycle_state`` means the legacy ``state`` was absent.
    """

    life_cycle_state: str = ""
    result_state: str | None = None
    state_message: str = ""
    user_cancelled_or_timedout: bool = False
    status_state: str | None = None
    termination_code: str | None = None
    termination_type: str | None = None
    termination_message: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One entry of a run's history."""

    from_state: RunState | None
    to_state: RunState
    at: datetime
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the ledger holds it. It never holds a credential."""

    id: int
    namespace: str
    state: RunState
    spec: Mapping[str, Any]
    request_fingerprint: str
    workspace: str
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = None
    databricks_host: str | None = None
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    state_message: str = ""
    callback_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # The ServiceAccount or Secret the request chose in its namespace; names, never secrets.
    identity_ref: Mapping[str, str] = field(default_factory=dict)
    next_poll_at: datetime | None = None
    attempts: int = 0
    cancel_requested: bool = False
    history: tuple[Transition, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state.terminal


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    """How many of a namespace's runs hold quota right now, as admission rules see it."""

    namespace: str
    active: int
    queued: int


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """A stable digest of a submission body, to tell a retry from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def databricks_idempotency_token(installation_id: str, run_id: int) -> str:
    """The ``idempotency_token`` sent with runs/submit for ledger row ``run_id``.

    The installation id (random, made once per ledger) keeps two gateways, or a ledger that was
    reset, from sharing tokens on one workspace: a bare row id would make Databricks hand back
    another deployment's run. Databricks allows at most 64 characters.
    """
    token = f"lakegate-{installation_id}-{run_id}"
    if len(token) > 64:
        raise ValueError("idempotency token over 64 characters")
    return token


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


# --- what Databricks says, in our states ------------------------------------------------------

# Databricks' own queue comes after our submission, so a run it holds QUEUED, BLOCKED or
# waiting for a retry is, for us, accepted by Databricks and not yet running: PENDING. The
# legacy life cycle says WAITING_FOR_RETRY where the newer status says WAITING.
_ACTIVE: Mapping[str, RunState] = {
    "QUEUED": RunState.PENDING,
    "PENDING": RunState.PENDING,
    "BLOCKED": RunState.PENDING,
    "WAITING_FOR_RETRY": RunState.PENDING,
    "WAITING": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    "TERMINATING": RunState.TERMINATING,
}
_LIFE_CYCLE_TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})

# Results that settle the outcome on their own. SUCCESS_WITH_FAILURES is a success because
# Databricks calls it one: the failures were in tasks the job was built to tolerate (run_if).
# The limit and exclusion results mean Databricks never executed the run: SKIPPED.
_DECISIVE_RESULTS: Mapping[str, RunState] = {
    "SUCCESS": RunState.SUCCEEDED,
    "SUCCESS_WITH_FAILURES": RunState.SUCCEEDED,
    "TIMEDOUT": RunState.TIMED_OUT,
    "CANCELED": RunState.CANCELED,
    "UPSTREAM_CANCELED": RunState.CANCELED,
    "EXCLUDED": RunState.SKIPPED,
    "DISABLED": RunState.SKIPPED,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": RunState.SKIPPED,
}

# status.termination_details.code. Codes for the platform's or the cloud's faults, and for
# limits that clear by themselves, are INTERNAL_ERROR; codes for the tenant's job or
# configuration are FAILED. The newer status cannot tell a timeout from a platform cancel
# (both are CANCELED), so a timeout seen only through it is reported as CANCELED.
_TERMINATION_CODES: Mapping[str, RunState] = {
    "SUCCESS": RunState.SUCCEEDED,
    "SUCCESS_WITH_FAILURES": RunState.SUCCEEDED,
    "USER_CANCELED": RunState.CANCELED,
    "CANCELED": RunState.CANCELED,
    "SKIPPED": RunState.SKIPPED,
    "DISABLED": RunState.SKIPPED,
    "WORKSPACE_RUN_LIMIT_EXCEEDED": RunState.SKIPPED,
    "MAX_CONCURRENT_RUNS_EXCEEDED": RunState.SKIPPED,
    "MAX_JOB_QUEUE_SIZE_EXCEEDED": RunState.SKIPPED,
    "INTERNAL_ERROR": RunState.INTERNAL_ERROR,
    "DRIVER_ERROR": RunState.INTERNAL_ERROR,
    "CLUSTER_ERROR": RunState.INTERNAL_ERROR,
    "CLOUD_FAILURE": RunState.INTERNAL_ERROR,
    "CLUSTER_REQUEST_LIMIT_EXCEEDED": RunState.INTERNAL_ERROR,
    "MAX_SPARK_CONTEXTS_EXCEEDED": RunState.INTERNAL_ERROR,
    "RUN_EXECUTION_ERROR": RunState.FAILED,
    "REPOSITORY_CHECKOUT_FAILED": RunState.FAILED,
    "INVALID_CLUSTER_REQUEST": RunState.FAILED,
    "FEATURE_DISABLED": RunState.FAILED,
    "STORAGE_ACCESS_ERROR": RunState.FAILED,
    "UNAUTHORIZED_ERROR": RunState.FAILED,
    "LIBRARY_INSTALLATION_ERROR": RunState.FAILED,
    "RESOURCE_NOT_FOUND": RunState.FAILED,
    "INVALID_RUN_CONFIGURATION": RunState.FAILED,
    "BREAKING_CHANGE": RunState.FAILED,
    "BUDGET_POLICY_LIMIT_EXCEEDED": RunState.FAILED,
    "CLUSTER_TERMINATED_BY_USER": RunState.FAILED,
}
# termination_details.type: the fallback for codes newer than this table.
_TERMINATION_TYPES: Mapping[str, RunState] = {
    "SUCCESS": RunState.SUCCEEDED,
    "CLIENT_ERROR": RunState.FAILED,
    "INTERNAL_ERROR": RunState.INTERNAL_ERROR,
    "CLOUD_FAILURE": RunState.INTERNAL_ERROR,
}
_FAILURES = frozenset({RunState.FAILED, RunState.INTERNAL_ERROR})


def _norm(value: str | None) -> str:
    return (value or "").strip().upper()


def _termination_outcome(remote: RemoteStatus) -> RunState | None:
    """The outcome termination_details name, or None when they name nothing we know."""
    code = _TERMINATION_CODES.get(_norm(remote.termination_code))
    return code or _TERMINATION_TYPES.get(_norm(remote.termination_type))


def _failure(details: RunState | None, fallback: RunState) -> RunState:
    """Which kind of failure: the details may only tell the platform's fault from the job's."""
    return details if details is not None and details in _FAILURES else fallback


def _legacy_outcome(life_cycle: str, remote: RemoteStatus) -> RunState:
    if life_cycle == "SKIPPED":
        return RunState.SKIPPED
    details = _termination_outcome(remote)
    if life_cycle == "INTERNAL_ERROR":
        # Databricks reports some of the tenant's own failures (a Git checkout, a library) with
        # this life cycle; the termination details tell them apart from the platform's.
        return _failure(details, RunState.INTERNAL_ERROR)
    result = _norm(remote.result_state)
    if result in _DECISIVE_RESULTS:
        return _DECISIVE_RESULTS[result]
    if result in ("FAILED", "UPSTREAM_FAILED"):
        return _failure(details, RunState.FAILED)
    # No result, or one newer than this table: trust the details, and never claim a success
    # that nothing confirms.
    return details or RunState.FAILED


def map_remote_status(remote: RemoteStatus) -> RunState:
    """Our state for what Databricks reports. Total: unknown values never raise.

    The legacy ``state`` decides when its life cycle is one we know, because only it can tell
    a timeout or an upstream failure; the newer ``status`` decides when the legacy one is absent
    or unknown, and its termination details tell platform faults from the tenant's. A run that
    neither source shows as ended stays PENDING: polling a finished run a little longer costs
    less than dropping a live one, and ``reconcile`` never records it as a step back.
    """
    life_cycle = _norm(remote.life_cycle_state)
    if life_cycle in _ACTIVE:
        return _ACTIVE[life_cycle]
    if life_cycle in _LIFE_CYCLE_TERMINAL:
        return _legacy_outcome(life_cycle, remote)
    status = _norm(remote.status_state)
    if status in _ACTIVE:
        return _ACTIVE[status]
    if status == "TERMINATED":
        return _termination_outcome(remote) or RunState.FAILED
    if _norm(remote.result_state) or _norm(remote.termination_code):
        # Databricks only sends a result for an ended run, whatever it calls the life cycle.
        return _legacy_outcome("TERMINATED", remote)
    return RunState.PENDING


# Databricks values worth repeating to a caller because our state alone does not say them.
_TELLING_RESULTS = frozenset(
    {
        "SUCCESS_WITH_FAILURES",
        "UPSTREAM_FAILED",
        "UPSTREAM_CANCELED",
        "EXCLUDED",
        "DISABLED",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
    }
)
_WAITING = frozenset({"QUEUED", "BLOCKED", "WAITING_FOR_RETRY", "WAITING"})
MAX_STATE_MESSAGE = 2000


def remote_state_message(remote: RemoteStatus) -> str:
    """A one-line, human account of a Databricks status, e.g. ``RUN_EXECUTION_ERROR: ...``.

    It leads with the Databricks code our state does not already convey, then Databricks' own
    message, and is cut to ``MAX_STATE_MESSAGE`` characters so a stack trace cannot bloat the
    ledger.
    """
    detail = remote.termination_message or remote.state_message or ""
    result, code = _norm(remote.result_state), _norm(remote.termination_code)
    if result in _TELLING_RESULTS:
        label = result
    elif code and code != "SUCCESS":
        label = code
    elif _norm(remote.life_cycle_state) in _WAITING:
        label = _norm(remote.life_cycle_state)
    elif _norm(remote.status_state) in _WAITING:
        label = _norm(remote.status_state)
    else:
        label = ""
    # One line whatever Databricks sent, so logs and tables stay readable.
    text = " ".join((f"{label}: {detail}" if label and detail else label or detail).split())
    if len(text) > MAX_STATE_MESSAGE:
        text = text[: MAX_STATE_MESSAGE - 1] + "\u2026"
    return text


# --- polling ----------------------------------------------------------------------------------

# A run is polled about every tenth of its age: a minute-old run every few seconds, an
# hour-old one every few minutes, so long runs do not spend the per-workspace request budget.
POLL_AGE_FRACTION = 0.1
POLL_JITTER_FRACTION = 0.2


def next_poll_delay(
    age_seconds: float, *, min_interval: float, max_interval: float, jitter: float
) -> float:
    """Seconds until a run of this age is polled again.

    Before jitter the delay is ``age * POLL_AGE_FRACTION`` held within [min, max], so it never
    shrinks as a run ages. ``jitter`` (a uniform draw in [0, 1), supplied by the caller so this
    stays pure) spreads it by up to ``POLL_JITTER_FRACTION`` either way, so runs submitted
    together, or found due together after a restart, do not poll in lockstep; the bounds still
    win over jitter. A negative or NaN age (clocks disagree) counts as zero.
    """
    if not 0 < min_interval <= max_interval:
        raise ValueError("need 0 < min_interval <= max_interval")
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    age = age_seconds if age_seconds >= 0 else 0.0
    base = min(max(age * POLL_AGE_FRACTION, min_interval), max_interval)
    spread = 1 + POLL_JITTER_FRACTION * (2 * jitter - 1)
    return min(max(base * spread, min_interval), max_interval)
