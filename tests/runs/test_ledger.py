"""The ledger seam: every write of a run, counted and logged once, on a real SQLite ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from gateway.model import NamespaceUsage, RunRecord, RunState
from gateway.runs.specs import RUN_COMPLETED
from tests.runs.conftest import Wired, new_run

S = RunState


async def accepted(wired: Wired, state: RunState = S.SUBMITTING) -> RunRecord:
    run, created = await wired.ledger.accept(new_run(state))
    assert created
    return run


async def pending(wired: Wired) -> RunRecord:
    run = await accepted(wired)
    moved = await wired.ledger.record_submission(
        run, remote_id=455_644_833, host=wired.emulator.url, first_poll_in=5
    )
    assert moved is not None
    return moved


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_finish_is_written_once_with_one_event_one_count_and_one_log(wired: Wired) -> None:
    """Two finishes of one run (service and poller racing) write, count and log it once."""
    run = await pending(wired)
    with capture_logs() as logs:
        first = await wired.ledger.finish(run, S.SUCCEEDED, "done")
        second = await wired.ledger.finish(run, S.CANCELED, "canceled")
    assert first is not None
    assert first.state is S.SUCCEEDED
    assert second is None
    assert [event["type"] for event in await wired.outbox(run)] == [RUN_COMPLETED]
    assert wired.count("lakegate_run_transitions", state="SUCCEEDED") == 1
    assert wired.count("lakegate_run_transitions", state="CANCELED") == 0
    assert events(logs, "run_finished") == [
        {
            "event": "run_finished",
            "log_level": "info",
            "run_id": run.id,
            "namespace": "team-a",
            "state": "SUCCEEDED",
        }
    ]


async def test_the_finished_event_says_how_the_run_ended(wired: Wired) -> None:
    """The outbox event carries the final state, the message and the run page as recorded."""
    run = await pending(wired)
    await wired.ledger.finish(
        run, S.FAILED, "RUN_EXECUTION_ERROR: boom", run_page_url="https://x/1"
    )
    [event] = await wired.outbox(run)
    assert event["timestamp"] is not None
    assert {k: event["data"][k] for k in ("id", "state", "state_message", "run_page_url")} == {
        "id": run.id,
        "state": "FAILED",
        "state_message": "RUN_EXECUTION_ERROR: boom",
        "run_page_url": "https://x/1",
    }


async def test_advance_moves_a_run_without_an_event(wired: Wired) -> None:
    """A state change short of the end is counted, but writes no outbox row and no end log."""
    run = await pending(wired)
    poll_at = wired.clock.utc() + timedelta(seconds=7)
    with capture_logs() as logs:
        moved = await wired.ledger.advance(
            run, S.RUNNING, "", run_page_url="https://x/2", next_poll_at=poll_at
        )
    assert moved is not None
    assert (moved.state, moved.run_page_url, moved.next_poll_at) == (
        S.RUNNING,
        "https://x/2",
        poll_at,
    )
    assert await wired.outbox(run) == []
    assert wired.count("lakegate_run_transitions", state="RUNNING") == 1
    assert events(logs, "run_finished") == []


async def test_finish_takes_only_an_end(wired: Wired) -> None:
    """finish() with a state that does not end a run is a caller bug, and writes nothing."""
    run = await pending(wired)
    with pytest.raises(ValueError, match="use advance"):
        await wired.ledger.finish(run, S.RUNNING, "")
    assert (await wired.ledger.current(run)).state is S.PENDING


async def test_advance_takes_no_end(wired: Wired) -> None:
    """advance() to a terminal state is a caller bug: an end needs its event, from finish()."""
    run = await pending(wired)
    now = wired.clock.utc()
    with pytest.raises(ValueError, match="use finish"):
        await wired.ledger.advance(run, S.SUCCEEDED, "", run_page_url=None, next_poll_at=now)
    assert await wired.outbox(run) == []


async def test_a_recorded_submission_is_pending_with_its_databricks_id(wired: Wired) -> None:
    """SUBMITTING becomes PENDING with the remote id and host, first polled a set time on."""
    run = await accepted(wired)
    with capture_logs() as logs:
        moved = await wired.ledger.record_submission(
            run, remote_id=77, host="https://adb-1.example", first_poll_in=5
        )
    assert moved is not None
    assert (moved.state, moved.databricks_run_id, moved.databricks_host) == (
        S.PENDING,
        77,
        "https://adb-1.example",
    )
    assert moved.next_poll_at == wired.clock.utc() + timedelta(seconds=5)
    assert wired.count("lakegate_run_transitions", state="PENDING") == 1
    assert [e["remote_id"] for e in events(logs, "run_submitted")] == [77]


async def test_a_deferred_submission_stays_submitting(wired: Wired) -> None:
    """Deferring sets the attempts, the next try and the message; it is no state change."""
    run = await accepted(wired)
    later = wired.clock.utc() + timedelta(seconds=40)
    deferred = await wired.ledger.defer_submission(
        run, attempts=3, next_poll_at=later, message="waiting to submit (attempt 3): 503"
    )
    assert deferred is not None
    assert (deferred.state, deferred.attempts, deferred.next_poll_at) == (S.SUBMITTING, 3, later)
    assert deferred.state_message == "waiting to submit (attempt 3): 503"
    assert wired.metrics.registry.get_sample_value("lakegate_run_transitions_total") is None


async def test_postponed_runs_wait_their_drawn_delay_with_the_reason(wired: Wired) -> None:
    """Each postponed run is due again after its own drawn delay, and says why."""
    runs = [await pending(wired), await accepted(wired)]
    delays = iter([6.0, 9.0])
    with capture_logs() as logs:
        count = await wired.ledger.postpone(
            runs, "identity unavailable", delay=lambda: next(delays)
        )
    assert count == 2
    now = wired.clock.utc()
    got = [await wired.ledger.current(run) for run in runs]
    assert [r.next_poll_at for r in got] == [now + timedelta(seconds=6), now + timedelta(seconds=9)]
    assert {r.state_message for r in got} == {"identity unavailable"}
    assert [e["reason"] for e in events(logs, "poll_postponed")] == ["identity unavailable"]


async def test_accept_lets_admission_choose_the_initial_state(wired: Wired) -> None:
    """The admit callback sees the namespace's usage inside the insert and picks QUEUED."""
    await accepted(wired)
    seen: list[NamespaceUsage] = []

    def admit(usage: NamespaceUsage) -> RunState:
        seen.append(usage)
        return S.QUEUED

    run, created = await wired.ledger.accept(new_run(), admit=admit)
    assert created
    assert run.state is S.QUEUED
    assert [(u.namespace, u.active, u.queued, u.workspace_active) for u in seen] == [
        ("team-a", 1, 0, 1)
    ]


async def test_a_write_that_lost_the_race_changes_nothing(wired: Wired) -> None:
    """Advancing from a state the run has left writes nothing and counts nothing."""
    stale = await pending(wired)
    await wired.ledger.advance(
        stale, S.RUNNING, "", run_page_url=None, next_poll_at=wired.clock.utc()
    )
    again = await wired.ledger.advance(
        stale, S.TERMINATING, "", run_page_url=None, next_poll_at=wired.clock.utc()
    )
    assert again is None
    assert (await wired.ledger.current(stale)).state is S.RUNNING
    assert wired.count("lakegate_run_transitions", state="TERMINATING") == 0
