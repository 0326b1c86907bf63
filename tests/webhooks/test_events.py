"""The events runs produce: run.completed for every end, run.state_changed on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.api.views import run_view
from gateway.metrics import Metrics
from gateway.model import TERMINAL_STATES, RunRecord, RunState
from gateway.runs.ledger import RunLedger
from gateway.runs.specs import (
    RUN_COMPLETED,
    RUN_STATE_CHANGED,
    completed_event,
    run_data,
    state_changed_event,
)
from gateway.store.sqlite import SqliteStore
from tests.runs.conftest import new_run

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _record(state: RunState, **extra: object) -> RunRecord:
    return RunRecord(
        id=7, namespace="team-a", state=state, spec={}, request_fingerprint="f",
        workspace="w", created_at=NOW, updated_at=NOW + timedelta(seconds=3),
        labels={"team": "a"}, callback_url="https://hooks.example/a", **extra,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES, key=str))
def test_every_end_is_a_completed_event_showing_the_run_as_the_api_does(state: RunState) -> None:
    """run.completed carries the run exactly as GET shows it (without history), REJECTED too."""
    run = _record(state, databricks_run_id=9, run_page_url="https://x/9", state_message="m")
    event = completed_event(run, at=NOW)
    assert event["type"] == RUN_COMPLETED
    assert event["timestamp"] == "2026-01-01T12:00:00.000000Z"
    assert event["data"] == run_view(run) == run_data(run)


def test_the_two_kinds_refuse_each_others_states() -> None:
    """A live state is no completion and an end is no mere state change."""
    with pytest.raises(ValueError, match="does not end"):
        completed_event(_record(RunState.RUNNING), at=NOW)
    with pytest.raises(ValueError, match=r"run\.completed"):
        state_changed_event(_record(RunState.FAILED), at=NOW)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "l.db")
    await store.open()
    yield store
    await store.close()


async def _walk(ledger: RunLedger, store: SqliteStore) -> list[str]:
    run, _ = await ledger.accept(new_run())
    pending = await ledger.record_submission(run, remote_id=5, host="https://h", first_poll_in=1)
    assert pending is not None
    running = await ledger.advance(
        pending, RunState.RUNNING, "", run_page_url="https://x/5", next_poll_at=NOW
    )
    assert running is not None
    await ledger.finish(running, RunState.SUCCEEDED, "done")
    rows = await store.list_outbox(run_id=run.id)
    return [f"{row.event_type}:{row.payload['data']['state']}" for row in rows]


async def test_a_namespace_that_asks_gets_every_state_change_in_order(store: SqliteStore) -> None:
    """With state_changes on, each transition writes its event, ending with run.completed."""
    ledger = RunLedger(store, Metrics(), state_changes=lambda ns: ns == "team-a")
    assert await _walk(ledger, store) == [
        f"{RUN_STATE_CHANGED}:PENDING",
        f"{RUN_STATE_CHANGED}:RUNNING",
        f"{RUN_COMPLETED}:SUCCEEDED",
    ]


async def test_a_namespace_that_does_not_ask_gets_only_the_end(store: SqliteStore) -> None:
    """Without state_changes only run.completed is written."""
    ledger = RunLedger(store, Metrics(), state_changes=lambda ns: False)
    assert await _walk(ledger, store) == [f"{RUN_COMPLETED}:SUCCEEDED"]
