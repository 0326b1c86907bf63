"""The state of an emulated run, computed from its timeline and the time: pure, no clock.

A run is a handful of timestamps, never a timer: what ``runs/get`` shows is worked out when
it is asked, so ten thousand active runs cost nothing between requests. The normal path is
(QUEUED ->) PENDING -> RUNNING -> TERMINATING -> TERMINATED; the failure outcomes follow the
table of reference section 1.4:

    outcome                     life_cycle / result_state    termination code / type
    SUCCESS                     TERMINATED / SUCCESS         SUCCESS / SUCCESS
    FAILED                      TERMINATED / FAILED          RUN_EXECUTION_ERROR / CLIENT_ERROR
    user cancel                 TERMINATED / CANCELED        USER_CANCELED / CLIENT_ERROR
    CANCELED (by platform)      TERMINATED / CANCELED        CANCELED / CLIENT_ERROR
    TIMEDOUT (or timeout)       TERMINATED / TIMEDOUT        CANCELED / CLIENT_ERROR
    INTERNAL_ERROR (cluster)    INTERNAL_ERROR / FAILED      CLUSTER_ERROR / CLOUD_FAILURE
    REPOSITORY_CHECKOUT_FAILED  INTERNAL_ERROR / FAILED      REPOSITORY_CHECKOUT_FAILED / ...
    SKIPPED                     SKIPPED / (none)             WORKSPACE_RUN_LIMIT_EXCEEDED / ...

Cluster and checkout failures end the run when PENDING ends (the run never reaches RUNNING);
a skipped run ends as soon as it leaves the queue. ``timeout_seconds`` counts from the end of
the queue, as Databricks does not charge queue time to a run's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    REPOSITORY_CHECKOUT_FAILED = "REPOSITORY_CHECKOUT_FAILED"
    SKIPPED = "SKIPPED"
    # Never asked for: what a cancel request and a task's failed upstream turn into.
    USER_CANCELED = "USER_CANCELED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"


# Outcomes that end a run at the end of PENDING, without RUNNING or TERMINATING.
_FAIL_AT_SETUP = frozenset({Outcome.INTERNAL_ERROR, Outcome.REPOSITORY_CHECKOUT_FAILED})

# When tasks ask for different outcomes, the run shows the worst of them.
_SEVERITY = {
    Outcome.SUCCESS: 0,
    Outcome.SKIPPED: 1,
    Outcome.UPSTREAM_FAILED: 2,
    Outcome.FAILED: 3,
    Outcome.CANCELED: 4,
    Outcome.USER_CANCELED: 5,
    Outcome.TIMEDOUT: 6,
    Outcome.REPOSITORY_CHECKOUT_FAILED: 7,
    Outcome.INTERNAL_ERROR: 8,
}

ACTIVE_LIFE_CYCLES = frozenset({"QUEUED", "PENDING", "RUNNING", "TERMINATING"})


@dataclass(frozen=True)
class Ending:
    """How a terminal run reports itself."""

    life_cycle_state: str
    result_state: str | None
    code: str
    type: str
    message: str
    user_cancelled_or_timedout: bool


ENDINGS: dict[Outcome, Ending] = {
    Outcome.SUCCESS: Ending("TERMINATED", "SUCCESS", "SUCCESS", "SUCCESS", "", False),
    Outcome.FAILED: Ending(
        "TERMINATED",
        "FAILED",
        "RUN_EXECUTION_ERROR",
        "CLIENT_ERROR",
        "Workload failed, see run output for details",
        False,
    ),
    Outcome.USER_CANCELED: Ending(
        "TERMINATED", "CANCELED", "USER_CANCELED", "CLIENT_ERROR", "Run cancelled.", True
    ),
    Outcome.CANCELED: Ending(
        "TERMINATED",
        "CANCELED",
        "CANCELED",
        "CLIENT_ERROR",
        "Run was cancelled by the platform.",
        False,
    ),
    Outcome.TIMEDOUT: Ending(
        "TERMINATED",
        "TIMEDOUT",
        "CANCELED",
        "CLIENT_ERROR",
        "Run timed out after its configured timeout.",
        True,
    ),
    Outcome.INTERNAL_ERROR: Ending(
        "INTERNAL_ERROR",
        "FAILED",
        "CLUSTER_ERROR",
        "CLOUD_FAILURE",
        "Cluster failed to start: the cloud provider could not acquire the instances.",
        False,
    ),
    Outcome.REPOSITORY_CHECKOUT_FAILED: Ending(
        "INTERNAL_ERROR",
        "FAILED",
        "REPOSITORY_CHECKOUT_FAILED",
        "CLIENT_ERROR",
        "Failed to checkout Git repository: the credential of the run's owner was refused.",
        False,
    ),
    Outcome.SKIPPED: Ending(
        "SKIPPED",
        None,
        "WORKSPACE_RUN_LIMIT_EXCEEDED",
        "CLIENT_ERROR",
        "The run was skipped: the workspace is running too many jobs.",
        False,
    ),
    Outcome.UPSTREAM_FAILED: Ending(
        "TERMINATED",
        "UPSTREAM_FAILED",
        "SKIPPED",
        "CLIENT_ERROR",
        "Upstream task failed.",
        False,
    ),
}

_ACTIVE_MESSAGES = {
    "QUEUED": "Waiting in queue: the workspace has reached its limit of active runs.",
    "PENDING": "Waiting for cluster",
    "RUNNING": "In run",
    "TERMINATING": "Terminating the run",
}


@dataclass(frozen=True)
class Plan:
    """What a run will do if nobody intervenes: outcome and phase lengths in ms."""

    outcome: Outcome
    pending_ms: int
    running_ms: int
    terminating_ms: int


@dataclass(frozen=True)
class Timeline:
    """Everything that decides a run's state. ``admitted_ms`` is None while it is queued."""

    submitted_ms: int
    plan: Plan
    timeout_ms: int = 0
    admitted_ms: int | None = None
    cancel_ms: int | None = None


@dataclass(frozen=True)
class Course:
    """The resolved course of a run: when it stops working, when it ends, and how."""

    outcome: Outcome
    # Start of TERMINATING, or of the terminal state when there is no TERMINATING phase.
    stop_ms: int | None
    end_ms: int | None
    has_terminating: bool


@dataclass(frozen=True)
class Snapshot:
    """A run as seen at one instant."""

    life_cycle_state: str
    state_message: str
    result_state: str | None = None
    ending: Ending | None = None
    queued: bool = False
    start_ms: int = 0
    end_ms: int = 0
    queue_ms: int = 0
    setup_ms: int = 0
    execution_ms: int = 0
    cleanup_ms: int = 0

    @property
    def terminal(self) -> bool:
        return self.ending is not None

    @property
    def status_state(self) -> str:
        return "TERMINATED" if self.ending is not None else self.life_cycle_state


def worst(outcomes: list[Outcome]) -> Outcome:
    """The outcome a run shows when its tasks ask for several."""
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.SUCCESS)


def course(tl: Timeline) -> Course:
    """Resolve where a run's timeline leads, cancel and timeout included."""
    plan = tl.plan
    admitted = tl.admitted_ms
    if admitted is None or (tl.cancel_ms is not None and tl.cancel_ms < admitted):
        if tl.cancel_ms is None:
            return Course(plan.outcome, None, None, has_terminating=False)
        return _stopped(tl.cancel_ms, Outcome.USER_CANCELED, plan)
    if plan.outcome is Outcome.SKIPPED:
        return Course(Outcome.SKIPPED, admitted, admitted, has_terminating=False)
    setup_end = admitted + plan.pending_ms
    natural_stop = setup_end if plan.outcome in _FAIL_AT_SETUP else setup_end + plan.running_ms
    stop, outcome = natural_stop, plan.outcome
    if tl.timeout_ms > 0 and admitted + tl.timeout_ms < stop:
        stop, outcome = admitted + tl.timeout_ms, Outcome.TIMEDOUT
    if tl.cancel_ms is not None and tl.cancel_ms < stop:
        stop, outcome = tl.cancel_ms, Outcome.USER_CANCELED
    if outcome in _FAIL_AT_SETUP:
        return Course(outcome, stop, stop, has_terminating=False)
    return _stopped(stop, outcome, plan)


def _stopped(stop_ms: int, outcome: Outcome, plan: Plan) -> Course:
    return Course(outcome, stop_ms, stop_ms + plan.terminating_ms, has_terminating=True)


def observe(tl: Timeline, now_ms: int, outcome: Outcome | None = None) -> Snapshot:
    """The run (or, with ``outcome``, one of its tasks) as seen at ``now_ms``.

    ``outcome`` replaces the run's final outcome for a task whose own result differs; the
    phases are the run's, since the emulator runs a run's tasks side by side.
    """
    c = course(tl)
    start = tl.submitted_ms
    admitted = tl.admitted_ms
    if c.end_ms is not None and now_ms >= c.end_ms:
        return _terminal(tl, c, outcome or c.outcome)
    if admitted is None or now_ms < admitted:
        if c.stop_ms is not None and now_ms >= c.stop_ms:
            return Snapshot("TERMINATING", _ACTIVE_MESSAGES["TERMINATING"], start_ms=start)
        return Snapshot("QUEUED", _ACTIVE_MESSAGES["QUEUED"], queued=True, start_ms=start)
    queue_ms = admitted - start
    setup_end = admitted + tl.plan.pending_ms
    stop = c.stop_ms if c.stop_ms is not None else setup_end + tl.plan.running_ms
    if now_ms >= stop:
        life = "TERMINATING"
    elif now_ms >= setup_end:
        life = "RUNNING"
    else:
        life = "PENDING"
    setup_ms = min(setup_end, stop) - admitted if now_ms >= min(setup_end, stop) else 0
    execution_ms = max(0, stop - setup_end) if life == "TERMINATING" else 0
    return Snapshot(
        life,
        _ACTIVE_MESSAGES[life],
        start_ms=start,
        queue_ms=queue_ms,
        setup_ms=setup_ms,
        execution_ms=execution_ms,
    )


def _terminal(tl: Timeline, c: Course, outcome: Outcome) -> Snapshot:
    assert c.end_ms is not None
    assert c.stop_ms is not None
    ending = ENDINGS[outcome]
    admitted = tl.admitted_ms
    if admitted is None or admitted > c.stop_ms:
        # Cancelled while queued: it never left the queue.
        queue_ms, setup_ms, execution_ms = c.stop_ms - tl.submitted_ms, 0, 0
    else:
        queue_ms = admitted - tl.submitted_ms
        setup_end = min(admitted + tl.plan.pending_ms, c.stop_ms)
        setup_ms = setup_end - admitted
        execution_ms = c.stop_ms - setup_end
    return Snapshot(
        ending.life_cycle_state,
        ending.message,
        result_state=ending.result_state,
        ending=ending,
        start_ms=tl.submitted_ms,
        end_ms=c.end_ms,
        queue_ms=queue_ms,
        setup_ms=setup_ms,
        execution_ms=execution_ms,
        cleanup_ms=c.end_ms - c.stop_ms,
    )


def task_outcomes(
    deps: Mapping[str, tuple[str, ...]],
    asked: Mapping[str, Outcome],
    run_outcome: Outcome,
) -> dict[str, Outcome]:
    """Each task's final outcome, given what each asked for and how the run ended.

    A run-wide ending (cancel, timeout, cluster failure) is every task's ending. Otherwise a
    task gets what it asked for (SUCCESS by default), unless a task it depends on, directly or
    not, did not succeed: then it is UPSTREAM_FAILED.
    """
    if run_outcome not in (*asked.values(), Outcome.SUCCESS):
        return dict.fromkeys(deps, run_outcome)
    result: dict[str, Outcome] = {}
    pending = list(deps)
    # Dependencies form a DAG (validation refuses cycles), so each sweep settles at least one
    # task; sweeping instead of recursing keeps a thousand-task chain off the call stack.
    while pending:
        waiting = []
        for key in pending:
            upstream = deps[key]
            if any(dep not in result for dep in upstream):
                waiting.append(key)
                continue
            upstream_bad = any(result[dep] is not Outcome.SUCCESS for dep in upstream)
            result[key] = (
                Outcome.UPSTREAM_FAILED if upstream_bad else asked.get(key, Outcome.SUCCESS)
            )
        if len(waiting) == len(pending):
            raise ValueError("task dependencies contain a cycle")
        pending = waiting
    return result
