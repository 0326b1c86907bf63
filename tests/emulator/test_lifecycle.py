"""The run life cycle: a pure function of a run's timeline and the instant it is looked at."""

from __future__ import annotations

import pytest

from gateway.emulator.databricks.lifecycle import (
    Outcome,
    Plan,
    Timeline,
    course,
    observe,
    task_outcomes,
    worst,
)

T0 = 1_767_225_600_000
PLAN = Plan(Outcome.SUCCESS, pending_ms=10_000, running_ms=60_000, terminating_ms=5_000)


def timeline(outcome: Outcome = Outcome.SUCCESS, **fields: int | None) -> Timeline:
    plan = Plan(outcome, PLAN.pending_ms, PLAN.running_ms, PLAN.terminating_ms)
    base: dict[str, int | None] = {"admitted_ms": T0}
    base.update(fields)
    return Timeline(submitted_ms=T0, plan=plan, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at_s", "life_cycle", "status"),
    [
        (0, "PENDING", "PENDING"),
        (9.999, "PENDING", "PENDING"),
        (10, "RUNNING", "RUNNING"),
        (69.999, "RUNNING", "RUNNING"),
        (70, "TERMINATING", "TERMINATING"),
        (75, "TERMINATED", "TERMINATED"),
        (10_000, "TERMINATED", "TERMINATED"),
    ],
)
def test_a_successful_run_moves_through_every_phase(
    at_s: float, life_cycle: str, status: str
) -> None:
    """PENDING -> RUNNING -> TERMINATING -> TERMINATED, at the planned instants."""
    snap = observe(timeline(), T0 + int(at_s * 1000))
    assert (snap.life_cycle_state, snap.status_state) == (life_cycle, status)


@pytest.mark.parametrize(
    ("outcome", "life_cycle", "result", "code", "kind", "flag", "end_s"),
    [
        (Outcome.SUCCESS, "TERMINATED", "SUCCESS", "SUCCESS", "SUCCESS", False, 75),
        (Outcome.FAILED, "TERMINATED", "FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR", False, 75),
        (Outcome.TIMEDOUT, "TERMINATED", "TIMEDOUT", "CANCELED", "CLIENT_ERROR", True, 75),
        (Outcome.CANCELED, "TERMINATED", "CANCELED", "CANCELED", "CLIENT_ERROR", False, 75),
        (
            Outcome.INTERNAL_ERROR,
            "INTERNAL_ERROR",
            "FAILED",
            "CLUSTER_ERROR",
            "CLOUD_FAILURE",
            False,
            10,
        ),
        (
            Outcome.REPOSITORY_CHECKOUT_FAILED,
            "INTERNAL_ERROR",
            "FAILED",
            "REPOSITORY_CHECKOUT_FAILED",
            "CLIENT_ERROR",
            False,
            10,
        ),
        (
            Outcome.SKIPPED,
            "SKIPPED",
            None,
            "WORKSPACE_RUN_LIMIT_EXCEEDED",
            "CLIENT_ERROR",
            False,
            0,
        ),
    ],
)
def test_each_outcome_ends_as_the_reference_table_says(
    outcome: Outcome,
    life_cycle: str,
    result: str | None,
    code: str,
    kind: str,
    flag: bool,
    end_s: int,
) -> None:
    """Every planned outcome reaches its terminal state with its code, type and flag."""
    snap = observe(timeline(outcome), T0 + 1_000_000)
    assert snap.ending is not None
    assert snap.life_cycle_state == life_cycle
    assert snap.status_state == "TERMINATED"
    assert snap.result_state == result
    assert (snap.ending.code, snap.ending.type) == (code, kind)
    assert snap.ending.user_cancelled_or_timedout is flag
    assert snap.end_ms == T0 + end_s * 1000


def test_setup_failures_never_reach_running() -> None:
    """A cluster failure ends the run straight from PENDING."""
    tl = timeline(Outcome.INTERNAL_ERROR)
    assert observe(tl, T0 + 9_999).life_cycle_state == "PENDING"
    assert observe(tl, T0 + 10_000).life_cycle_state == "INTERNAL_ERROR"


@pytest.mark.parametrize(
    ("timeout_s", "stop_s", "outcome"),
    [
        (30, 30, Outcome.TIMEDOUT),  # during RUNNING
        (5, 5, Outcome.TIMEDOUT),  # during PENDING
        (70, 70, Outcome.SUCCESS),  # exactly when running would end anyway
        (500, 70, Outcome.SUCCESS),  # longer than the run
        (0, 70, Outcome.SUCCESS),  # 0 means no timeout
    ],
)
def test_timeout_seconds_stops_a_run_that_outlives_it(
    timeout_s: int, stop_s: int, outcome: Outcome
) -> None:
    """timeout_seconds shorter than the run ends it TIMEDOUT through TERMINATING."""
    c = course(timeline(timeout_ms=timeout_s * 1000))
    assert c.outcome is outcome
    assert c.stop_ms == T0 + stop_s * 1000
    assert c.end_ms == T0 + (stop_s + 5) * 1000


def test_timeout_counts_from_the_end_of_the_queue() -> None:
    """Queue time is not charged to timeout_seconds."""
    tl = timeline(admitted_ms=T0 + 100_000, timeout_ms=30_000)
    assert course(tl).stop_ms == T0 + 130_000


@pytest.mark.parametrize(
    ("cancel_s", "seen_s", "life_cycle"),
    [(20, 20, "TERMINATING"), (20, 24.999, "TERMINATING"), (20, 25, "TERMINATED")],
)
def test_cancel_goes_through_terminating(cancel_s: int, seen_s: float, life_cycle: str) -> None:
    """A cancelled run terminates after the terminating phase."""
    tl = timeline(cancel_ms=T0 + cancel_s * 1000)
    assert observe(tl, T0 + int(seen_s * 1000)).life_cycle_state == life_cycle


def test_a_cancelled_run_ends_user_canceled() -> None:
    """Cancel gives CANCELED with USER_CANCELED and user_cancelled_or_timedout."""
    snap = observe(timeline(cancel_ms=T0 + 1_000), T0 + 1_000_000)
    assert snap.ending is not None
    assert (snap.result_state, snap.ending.code) == ("CANCELED", "USER_CANCELED")
    assert snap.ending.user_cancelled_or_timedout is True
    assert (snap.setup_ms, snap.execution_ms, snap.cleanup_ms) == (1_000, 0, 5_000)


def test_cancel_after_the_run_stopped_changes_nothing() -> None:
    """A cancel that arrives while TERMINATING keeps the planned outcome."""
    tl = timeline(Outcome.FAILED, cancel_ms=T0 + 72_000)
    assert course(tl).outcome is Outcome.FAILED


@pytest.mark.parametrize("seen_s", [0, 1_000])
def test_a_run_waiting_for_a_slot_is_queued(seen_s: int) -> None:
    """Without admission a run stays QUEUED, with queue details, however long."""
    snap = observe(timeline(admitted_ms=None), T0 + seen_s * 1000)
    assert (snap.life_cycle_state, snap.status_state, snap.queued) == ("QUEUED", "QUEUED", True)


def test_queue_time_is_reported_once_admitted() -> None:
    """queue_duration is the wait between submission and admission."""
    snap = observe(timeline(admitted_ms=T0 + 42_000), T0 + 43_000)
    assert (snap.life_cycle_state, snap.queue_ms) == ("PENDING", 42_000)


def test_a_queued_run_can_be_cancelled() -> None:
    """Cancel while queued terminates the run without it ever starting."""
    tl = timeline(admitted_ms=None, cancel_ms=T0 + 3_000)
    snap = observe(tl, T0 + 100_000)
    assert snap.result_state == "CANCELED"
    assert (snap.queue_ms, snap.setup_ms, snap.execution_ms) == (3_000, 0, 0)


@pytest.mark.parametrize(
    ("seen_s", "setup", "execution"),
    [(5, 0, 0), (30, 10_000, 0), (72, 10_000, 60_000), (100, 10_000, 60_000)],
)
def test_durations_appear_as_their_phases_end(seen_s: int, setup: int, execution: int) -> None:
    """setup_duration and execution_duration are known once their phase is over."""
    snap = observe(timeline(), T0 + seen_s * 1000)
    assert (snap.setup_ms, snap.execution_ms) == (setup, execution)


def test_end_time_is_zero_until_the_run_ends() -> None:
    """end_time is 0 while the run is active."""
    assert observe(timeline(), T0 + 74_999).end_ms == 0


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], Outcome.SUCCESS),
        ([Outcome.SUCCESS, Outcome.FAILED], Outcome.FAILED),
        ([Outcome.FAILED, Outcome.INTERNAL_ERROR, Outcome.TIMEDOUT], Outcome.INTERNAL_ERROR),
        ([Outcome.SKIPPED, Outcome.SUCCESS], Outcome.SKIPPED),
    ],
)
def test_a_run_shows_the_worst_outcome_its_tasks_ask_for(
    outcomes: list[Outcome], expected: Outcome
) -> None:
    """The run's outcome is the most severe of its tasks'."""
    assert worst(outcomes) is expected


@pytest.mark.parametrize(
    ("asked", "run_outcome", "expected"),
    [
        ({}, Outcome.SUCCESS, {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"}),
        (
            {"a": Outcome.FAILED},
            Outcome.FAILED,
            {"a": "FAILED", "b": "UPSTREAM_FAILED", "c": "SUCCESS"},
        ),
        ({"c": Outcome.FAILED}, Outcome.FAILED, {"a": "SUCCESS", "b": "SUCCESS", "c": "FAILED"}),
        (
            {},
            Outcome.USER_CANCELED,
            {"a": "USER_CANCELED", "b": "USER_CANCELED", "c": "USER_CANCELED"},
        ),
    ],
)
def test_task_outcomes_follow_dependencies(
    asked: dict[str, Outcome], run_outcome: Outcome, expected: dict[str, str]
) -> None:
    """A task after a failed one is UPSTREAM_FAILED; run-wide endings reach every task."""
    deps = {"a": (), "b": ("a",), "c": ()}
    assert task_outcomes(deps, asked, run_outcome) == expected


def test_task_outcomes_handle_a_long_chain_in_any_order() -> None:
    """A thousand-task chain listed backwards resolves without recursion."""
    deps = {f"t{i}": ((f"t{i - 1}",) if i else ()) for i in reversed(range(1000))}
    result = task_outcomes(deps, {"t0": Outcome.FAILED}, Outcome.FAILED)
    assert result["t0"] is Outcome.FAILED
    assert result["t999"] is Outcome.UPSTREAM_FAILED
