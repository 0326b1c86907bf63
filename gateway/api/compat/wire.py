"""The Databricks Jobs API shapes of lakegate's runs. Pure: no I/O, no clock.

The facade shows a client lakegate's ledger id as the Databricks ``run_id``, from submit to
the end, whether or not Databricks has been called yet:

- runs lakegate answers for alone (``ledger_run``): held runs (QUEUED, SUBMITTING) show as
  Databricks' QUEUED, runs lakegate ended without Databricks as the terminal shape Databricks
  would give, and runs/list items, which never cost a Databricks call;
- runs Databricks holds (``remote_run``): Databricks' own JSON with the run's ids rewritten
  to lakegate's, every other field (tasks and their own task run ids, run_page_url) as sent;
- task runs (runs/get of a task run id): Databricks' JSON, the parent named by lakegate's id;
- runs/get-output: a lakegate id stands for its only task's run.

Requests are read in ``requests``, errors shaped in ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.api.compat.errors import CompatError
from gateway.api.views import run_location
from gateway.model import RunRecord, RunState

MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


def epoch_ms(moment: datetime) -> int:
    # The ledger writes UTC; a naive value from a store driver means UTC, never local time.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class _Ending:
    life_cycle_state: str
    result_state: str | None
    code: str
    type: str
    user_cancelled_or_timedout: bool = False


# Databricks' terminal shape for each of our terminal states: the rows of reference section
# 1.4, chosen so that ``gateway.model.map_remote_status`` reads each back as the same state.
# REJECTED has no Databricks counterpart; INTERNAL_ERROR's life cycle makes every client treat
# it as a failure (the SDK's waiter raises, Airflow fails the task), and its CLIENT_ERROR
# details say the fault is in the request.
_ENDINGS: Mapping[RunState, _Ending] = {
    RunState.SUCCEEDED: _Ending("TERMINATED", "SUCCESS", "SUCCESS", "SUCCESS"),
    RunState.FAILED: _Ending("TERMINATED", "FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    RunState.TIMED_OUT: _Ending("TERMINATED", "TIMEDOUT", "CANCELED", "CLIENT_ERROR", True),
    RunState.CANCELED: _Ending("TERMINATED", "CANCELED", "USER_CANCELED", "CLIENT_ERROR", True),
    RunState.SKIPPED: _Ending("SKIPPED", None, "SKIPPED", "CLIENT_ERROR"),
    RunState.INTERNAL_ERROR: _Ending(
        "INTERNAL_ERROR", "FAILED", "INTERNAL_ERROR", "INTERNAL_ERROR"
    ),
    RunState.REJECTED: _Ending(
        "INTERNAL_ERROR", "FAILED", "INVALID_RUN_CONFIGURATION", "CLIENT_ERROR"
    ),
}
_HELD_MESSAGES: Mapping[RunState, str] = {
    RunState.QUEUED: "Queued by lakegate: the namespace is at its limit of active runs.",
    RunState.SUBMITTING: "Held by lakegate while it submits the run to Databricks.",
}


def _ledger_state(run: RunRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """The legacy ``state`` and the newer ``status`` of a run, from the ledger alone."""
    ending = _ENDINGS.get(run.state)
    if ending is not None:
        state: dict[str, Any] = {
            "life_cycle_state": ending.life_cycle_state,
            "state_message": run.state_message,
            "user_cancelled_or_timedout": ending.user_cancelled_or_timedout,
        }
        if ending.result_state is not None:
            state["result_state"] = ending.result_state
        details = {"code": ending.code, "type": ending.type, "message": run.state_message}
        return state, {"state": "TERMINATED", "termination_details": details}
    held = _HELD_MESSAGES.get(run.state)
    if held is None:
        # PENDING, RUNNING, TERMINATING: Databricks' own names.
        state = {
            "life_cycle_state": run.state.value,
            "state_message": run.state_message,
            "user_cancelled_or_timedout": False,
        }
        return state, {"state": run.state.value}
    message = f"{held} {run.state_message}".strip() if run.state_message else held
    state = {
        "life_cycle_state": "QUEUED",
        "state_message": message,
        "user_cancelled_or_timedout": False,
        "queue_reason": message,
    }
    queue: dict[str, Any] = {"message": message}
    if run.state is RunState.QUEUED:
        queue = {"code": "ACTIVE_RUNS_LIMIT_REACHED", **queue}
    return state, {"state": "QUEUED", "queue_details": queue}


def _ended_ms(run: RunRecord) -> int:
    ends = [t.at for t in run.history if t.to_state is run.state]
    return epoch_ms(ends[-1] if ends else run.updated_at)


def ledger_run(run: RunRecord, origin: str) -> dict[str, Any]:
    """A run as Databricks would show it, from the ledger alone.

    ``origin`` is the gateway as the client reached it (``scheme://host``). There are no
    tasks (those are Databricks' task runs, which exist only once Databricks has the run);
    ``job_id`` and ``run_page_url`` are always there, because clients read them straight after
    submitting (Airflow indexes both): ``job_id`` 0 names no job, and until Databricks gives
    a page the URL is the run's own on lakegate's /v1 API.
    """
    state, status = _ledger_state(run)
    return {
        "run_id": run.id,
        "job_id": 0,
        "run_name": str(run.spec.get("run_name") or "Untitled"),
        "run_type": "SUBMIT_RUN",
        "number_in_job": run.id,
        "original_attempt_run_id": run.id,
        "attempt_number": 0,
        "trigger": "ONE_TIME",
        "state": state,
        "status": status,
        "start_time": epoch_ms(run.created_at),
        "end_time": _ended_ms(run) if run.terminal else 0,
        "run_page_url": run.run_page_url or origin + run_location(run.namespace, run.id),
    }


def remote_run(payload: Mapping[str, Any], run: RunRecord) -> dict[str, Any]:
    """Databricks' runs/get answer for ``run``, showing lakegate's id for the run itself.

    Only the fields that name the run are rewritten; task run ids stay Databricks' (they are
    what runs/get-output takes), and an id that names another attempt is left alone.
    """
    out = dict(payload)
    remote_id = run.databricks_run_id
    out["run_id"] = run.id
    for key in ("number_in_job", "original_attempt_run_id"):
        if key not in out or out[key] == remote_id:
            out[key] = run.id
    return out


def remote_task_run(payload: Mapping[str, Any], run: RunRecord) -> dict[str, Any]:
    """Databricks' runs/get answer for one task run of ``run``: its own ids stay Databricks'
    (they are the task's), the run it belongs to is named by lakegate's id."""
    if payload.get("job_run_id") != run.databricks_run_id:
        return dict(payload)
    return {**payload, "job_run_id": run.id}


def output_task_run_id(payload: Mapping[str, Any]) -> int:
    """The task run id whose output a lakegate run id stands for: its only task's."""
    tasks = payload.get("tasks")
    if not isinstance(tasks, list) or len(tasks) != 1 or not isinstance(tasks[0], Mapping):
        raise CompatError(MULTI_TASK_OUTPUT)
    task_run_id = tasks[0].get("run_id")
    if isinstance(task_run_id, bool) or not isinstance(task_run_id, int):
        # Databricks has not created the task run yet.
        raise CompatError(MULTI_TASK_OUTPUT)
    return task_run_id


def remote_output(payload: Mapping[str, Any], run: RunRecord | None) -> dict[str, Any]:
    """runs/get-output as Databricks sent it, its parent run named by lakegate's id."""
    metadata = payload.get("metadata")
    if run is None or not isinstance(metadata, Mapping):
        return dict(payload)
    if metadata.get("job_run_id") != run.databricks_run_id:
        return dict(payload)
    return {**payload, "metadata": {**metadata, "job_run_id": run.id}}


def ledger_output(run: RunRecord, origin: str) -> dict[str, Any]:
    """runs/get-output for a run Databricks never had: its metadata, and why it ended."""
    out: dict[str, Any] = {"metadata": ledger_run(run, origin)}
    if run.terminal and run.state is not RunState.SUCCEEDED and run.state_message:
        out["error"] = run.state_message
    return out


# A run's arrays that runs/list shows only with expand_tasks, and 2.2 cuts at 100.
_LISTED_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history")


def list_item(
    shown: Mapping[str, Any], *, expand_tasks: bool, cut: int | None = None
) -> dict[str, Any]:
    """A run as runs/get shows it, as a runs/list item: its arrays only with
    ``expand_tasks``, no page token of runs/get's own. With ``cut`` (API 2.2) at most that
    many of each array, and ``has_more`` when the run has more than the item shows."""
    item = {key: value for key, value in shown.items() if key != "next_page_token"}
    if not expand_tasks:
        for key in _LISTED_ARRAYS:
            item.pop(key, None)
        return item
    more = "next_page_token" in shown
    if cut is not None:
        for key in _LISTED_ARRAYS:
            values = item.get(key)
            if isinstance(values, list) and len(values) > cut:
                item[key], more = values[:cut], True
    if more and cut is not None:
        item["has_more"] = True
    return item


def list_body(items: Sequence[Mapping[str, Any]], next_page_token: str | None) -> dict[str, Any]:
    """The runs/list answer: ``runs`` left out when empty, as Databricks leaves it out."""
    body: dict[str, Any] = {}
    if items:
        body["runs"] = [dict(item) for item in items]
    body["has_more"] = next_page_token is not None
    if next_page_token is not None:
        body["next_page_token"] = next_page_token
    return body
