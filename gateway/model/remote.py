"""What Databricks says about a run, in our states and in a line of our words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.model.states import RunState


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
