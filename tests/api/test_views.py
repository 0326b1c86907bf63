"""The wire shape of runs: pure functions, no loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gateway.api.views import rfc3339, run_view
from gateway.model import RunRecord, RunState, Transition

_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _run(**changes: object) -> RunRecord:
    base: dict[str, object] = {
        "id": 7,
        "namespace": "team-a",
        "state": RunState.RUNNING,
        "spec": {"tasks": [{"task_key": "t", "parameters": ["--password=hunter2"]}]},
        "request_fingerprint": "f" * 64,
        "workspace": "prod",
        "created_at": _AT,
        "updated_at": _AT,
        "idempotency_key": "job-42",
        "databricks_host": "https://adb-1.azuredatabricks.net",
        "history": (
            Transition(None, RunState.QUEUED, _AT),
            Transition(RunState.QUEUED, RunState.RUNNING, _AT, "started"),
        ),
    }
    base.update(changes)
    return RunRecord(**base)  # type: ignore[arg-type]


def test_rfc3339_is_utc_with_microseconds_and_z() -> None:
    """Aware times are converted to UTC and written with a Z suffix."""
    plus_two = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2024-05-01T12:00:00.000000Z"


def test_rfc3339_reads_naive_times_as_utc() -> None:
    """A naive time from a store driver is UTC, not the host's local time."""
    assert rfc3339(datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00.000000Z"


def test_run_view_leaves_out_spec_and_ledger_bookkeeping() -> None:
    """The spec, fingerprint, idempotency key and host never reach the wire."""
    view = run_view(_run())
    assert set(view) == {
        "id", "namespace", "state", "databricks_run_id", "run_page_url", "state_message",
        "created_at", "updated_at", "labels", "callback_url", "cancel_requested", "identity",
        "principal",
    }  # fmt: skip
    assert "hunter2" not in repr(view)


def test_run_view_adds_history_only_when_asked() -> None:
    """history lists every transition, oldest first, only for the single-run view."""
    assert "history" not in run_view(_run())
    assert run_view(_run(), history=True)["history"] == [
        {"from": None, "to": "QUEUED", "at": "2024-05-01T12:00:00.000000Z", "message": ""},
        {
            "from": "QUEUED",
            "to": "RUNNING",
            "at": "2024-05-01T12:00:00.000000Z",
            "message": "started",
        },
    ]
