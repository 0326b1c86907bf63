"""Ledger runs for the facade's tests, built without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import RunRecord, RunState, Transition

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_MS = 1_767_225_600_000
SPEC: dict[str, Any] = {
    "run_name": "nightly",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Shared/etl"}}],
}


def ledger_run(
    run_id: int = 7,
    state: RunState = RunState.RUNNING,
    *,
    namespace: str = "team-a",
    created_seconds: float = 0.0,
    ended_seconds: float = 60.0,
    databricks_run_id: int | None = None,
    state_message: str = "",
    **changes: Any,
) -> RunRecord:
    """A run created ``created_seconds`` after EPOCH; if terminal, ended ``ended_seconds`` on."""
    created = EPOCH + timedelta(seconds=created_seconds)
    ended = created + timedelta(seconds=ended_seconds)
    history = [Transition(None, RunState.SUBMITTING, created)]
    if state is not RunState.SUBMITTING:
        history.append(Transition(RunState.SUBMITTING, state, ended if state.terminal else created))
    values: dict[str, Any] = {
        "id": run_id,
        "namespace": namespace,
        "state": state,
        "spec": SPEC,
        "request_fingerprint": "f" * 64,
        "workspace": "emulated",
        "created_at": created,
        # A later, unrelated update (a poll) must not move end_time.
        "updated_at": ended + timedelta(seconds=5),
        "databricks_run_id": databricks_run_id,
        "state_message": state_message,
        "history": tuple(history),
    }
    values.update(changes)
    return RunRecord(**values)
