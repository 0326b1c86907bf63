"""What a poll of a group means for each run: a pure function, tested by tables, no loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.databricks.wire import RunSnapshot
from gateway.model import RemoteStatus, RunRecord, RunState
from gateway.runs.decide import GroupDecision, Move, decide, unlisted, walk_pages
from gateway.store.base import Reschedule

S = RunState
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NEXT = NOW + timedelta(seconds=30)
URL = "https://adb-1.example/#job/1/run/"


def run(
    run_id: int, state: RunState, *, cancel: bool = False, message: str = "before"
) -> RunRecord:
    return RunRecord(
        id=run_id,
        namespace="team-a",
        state=state,
        spec={},
        request_fingerprint="f",
        workspace="w",
        created_at=NOW,
        updated_at=NOW,
        databricks_run_id=1000 + run_id,
        state_message=message,
        cancel_requested=cancel,
    )


def seen(run_id: int, life_cycle: str, result: str | None = None, text: str = "") -> RunSnapshot:
    return RunSnapshot(
        run_id=1000 + run_id,
        status=RemoteStatus(life_cycle_state=life_cycle, result_state=result, state_message=text),
        run_page_url=f"{URL}{run_id}",
    )


def one(state: RunState, snapshot: RunSnapshot | None, *, cancel: bool = False) -> GroupDecision:
    snapshots = {} if snapshot is None else {snapshot.run_id: snapshot}
    return decide([run(1, state, cancel=cancel)], snapshots, next_poll_at=NEXT)


@pytest.mark.parametrize(
    ("state", "life_cycle", "result"),
    [
        (S.PENDING, "PENDING", None),
        (S.PENDING, "QUEUED", None),
        (S.RUNNING, "RUNNING", None),
        (S.RUNNING, "PENDING", None),  # a step back: a task waits for a retry
        (S.TERMINATING, "RUNNING", None),
        (S.TERMINATING, "TERMINATING", None),
    ],
)
def test_a_run_whose_state_held_is_rescheduled(
    state: RunState, life_cycle: str, result: str | None
) -> None:
    """The same state, or a step back, holds: one Reschedule at the group's next poll."""
    decision = one(state, seen(1, life_cycle, result))
    assert decision.moved == decision.missing == ()
    [held] = decision.held
    assert (held.run_id, held.state, held.next_poll_at) == (1, state, NEXT)
    assert held.run_page_url == f"{URL}1"


@pytest.mark.parametrize(
    ("state", "life_cycle", "result", "target"),
    [
        (S.PENDING, "RUNNING", None, S.RUNNING),
        (S.PENDING, "TERMINATING", None, S.TERMINATING),
        (S.RUNNING, "TERMINATING", None, S.TERMINATING),
        (S.RUNNING, "TERMINATED", "SUCCESS", S.SUCCEEDED),
        (S.PENDING, "TERMINATED", "FAILED", S.FAILED),
        (S.TERMINATING, "TERMINATED", "CANCELED", S.CANCELED),
        (S.RUNNING, "TERMINATED", "TIMEDOUT", S.TIMED_OUT),
        (S.PENDING, "SKIPPED", None, S.SKIPPED),
        (S.RUNNING, "INTERNAL_ERROR", None, S.INTERNAL_ERROR),
    ],
)
def test_a_run_that_moved_forward_is_a_move(
    state: RunState, life_cycle: str, result: str | None, target: RunState
) -> None:
    """A later state, terminal or not, is a Move to it carrying what Databricks said."""
    snapshot = seen(1, life_cycle, result)
    decision = one(state, snapshot)
    assert decision.held == decision.missing == ()
    assert decision.moved == (Move(run(1, state), target, snapshot),)


def test_a_run_databricks_did_not_answer_about_is_missing() -> None:
    """Without a snapshot the run is missing, and neither held nor moved."""
    assert one(S.RUNNING, None) == GroupDecision(missing=(run(1, S.RUNNING),))


@pytest.mark.parametrize(
    ("state", "life_cycle", "result", "cancel"),
    [
        (S.PENDING, "PENDING", None, True),
        (S.PENDING, "RUNNING", None, True),  # moved, and still worth stopping
        (S.RUNNING, "RUNNING", None, True),
        (S.RUNNING, "TERMINATING", None, False),  # already stopping
        (S.RUNNING, "TERMINATED", "SUCCESS", False),  # too late
    ],
)
def test_a_flagged_run_needs_a_cancel_while_databricks_runs_it(
    state: RunState, life_cycle: str, result: str | None, cancel: bool
) -> None:
    """A cancel is sent for a flagged run only while it is PENDING or RUNNING at Databricks."""
    decision = one(state, seen(1, life_cycle, result), cancel=True)
    assert decision.cancel == ((run(1, state, cancel=True),) if cancel else ())


def test_an_unflagged_run_needs_no_cancel() -> None:
    """No cancel is sent for a run nobody asked to cancel."""
    assert one(S.RUNNING, seen(1, "RUNNING")).cancel == ()


@pytest.mark.parametrize(
    ("life_cycle", "text", "message"),
    [
        ("QUEUED", "waiting for a cluster", "QUEUED: waiting for a cluster"),
        ("RUNNING", "", "before"),
    ],
)
def test_a_held_run_keeps_its_message_unless_databricks_says_more(
    life_cycle: str, text: str, message: str
) -> None:
    """A held run takes Databricks' account of its state; with none it keeps its own."""
    state = S.PENDING if life_cycle == "QUEUED" else S.RUNNING
    [held] = one(state, seen(1, life_cycle, text=text)).held
    assert held.state_message == message


def test_a_group_is_sorted_run_by_run_in_its_order() -> None:
    """Each run of a mixed group lands in its own place, in the group's order."""
    group = [run(1, S.PENDING), run(2, S.RUNNING), run(3, S.RUNNING), run(4, S.PENDING)]
    snapshots = {s.run_id: s for s in (seen(1, "PENDING"), seen(2, "TERMINATED", "SUCCESS"))}
    snapshots[1004] = seen(4, "RUNNING")
    decision = decide(group, snapshots, next_poll_at=NEXT)
    assert [h.run_id for h in decision.held] == [1]
    assert [(m.run.id, m.target) for m in decision.moved] == [(2, S.SUCCEEDED), (4, S.RUNNING)]
    assert [r.id for r in decision.missing] == [3]
    assert decision.held[0] == Reschedule(1, S.PENDING, NEXT, "before", f"{URL}1")


def test_a_move_says_what_databricks_said() -> None:
    """A Move's message is Databricks' status in our words."""
    move = one(S.RUNNING, seen(1, "TERMINATED", "FAILED", "boom")).moved[0]
    assert move.message == "boom"


def test_the_runs_a_list_walk_did_not_show_are_asked_one_by_one() -> None:
    """unlisted() is the group's runs whose Databricks id the walk did not return."""
    group = [run(1, S.PENDING), run(2, S.RUNNING), run(3, S.RUNNING)]
    assert [r.id for r in unlisted(group, {1002: seen(2, "RUNNING")})] == [1, 3]
    assert unlisted([], {}) == []


@pytest.mark.parametrize(
    ("listed", "pages"), [(0, 1), (1, 1), (25, 1), (26, 2), (50, 2), (100, 4), (101, 5)]
)
def test_a_walk_is_as_many_pages_as_it_took_calls(listed: int, pages: int) -> None:
    """The pages of 25 a walk that showed so many runs took; showing none was still a call."""
    assert walk_pages(listed, page_size=25) == pages


@pytest.mark.parametrize(("listed", "size"), [(-1, 25), (3, 0)])
def test_walk_pages_refuses_nonsense(listed: int, size: int) -> None:
    with pytest.raises(ValueError, match="listed"):
        walk_pages(listed, page_size=size)
