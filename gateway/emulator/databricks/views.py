"""Runs as the Jobs API shows them: pure functions from records and an instant to JSON.

Fields the service would leave out are left out, never sent as null: times in epoch ms,
``end_time`` 0 until the run ends, durations once their phase is over, both the legacy
``state`` and the newer ``status``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from gateway.emulator.databricks.for_each import FOR_EACH
from gateway.emulator.databricks.for_each import stats as for_each_stats
from gateway.emulator.databricks.lifecycle import Snapshot
from gateway.emulator.databricks.runs import RunRecord, TaskRun
from gateway.emulator.databricks.validation import RESULT_PARAM

OUTPUT_PARAM = "lakegate_emulator_output"
TASKS_PAGE_SIZE = 100  # API 2.2 pages every array of a run at 100 elements
_QUEUE_MESSAGE = "The workspace has reached its limit of active runs."
# Keys of a task's spec that the run view owns; the rest of the spec is echoed.
_OWN_TASK_KEYS = frozenset({"run_id", "state", "status", "start_time", "end_time"})
_WITH_CLUSTER = frozenset({"RUNNING", "TERMINATING", "TERMINATED"})


@dataclass(frozen=True)
class Site:
    """Where run_page_url points."""

    base_url: str
    workspace_id: int

    def page_url(self, job_id: int, run_id: int) -> str:
        return f"{self.base_url}/?o={self.workspace_id}#job/{job_id}/run/{run_id}"


def state_view(snap: Snapshot) -> dict[str, Any]:
    state: dict[str, Any] = {
        "life_cycle_state": snap.life_cycle_state,
        "state_message": snap.state_message,
        "user_cancelled_or_timedout": bool(snap.ending and snap.ending.user_cancelled_or_timedout),
    }
    if snap.result_state is not None:
        state["result_state"] = snap.result_state
    if snap.queued:
        state["queue_reason"] = _QUEUE_MESSAGE
    return state


def status_view(snap: Snapshot) -> dict[str, Any]:
    status: dict[str, Any] = {"state": snap.status_state}
    if snap.ending is not None:
        status["termination_details"] = {
            "code": snap.ending.code,
            "type": snap.ending.type,
            "message": snap.ending.message,
        }
    if snap.queued:
        status["queue_details"] = {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": _QUEUE_MESSAGE}
    return status


def _times(snap: Snapshot, *, with_queue: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"start_time": snap.start_ms, "end_time": snap.end_ms}
    if snap.setup_ms or snap.execution_ms or snap.terminal:
        out["setup_duration"] = snap.setup_ms
    if snap.execution_ms or snap.terminal:
        out["execution_duration"] = snap.execution_ms
    if snap.terminal:
        out["cleanup_duration"] = snap.cleanup_ms
        out["run_duration"] = snap.end_ms - snap.start_ms
    if with_queue and (snap.queue_ms or snap.queued):
        out["queue_duration"] = snap.queue_ms
    return out


def creator_of(record: RunRecord) -> str:
    # Databricks names a service principal by its application id in user-name fields.
    return record.principal.application_id or record.principal.name


def run_view(
    record: RunRecord,
    now_ms: int,
    site: Site,
    *,
    tasks: bool = True,
    tasks_offset: int = 0,
    tasks_page: int | None = None,
) -> dict[str, Any]:
    """The run as runs/get (tasks paged when ``tasks_page``) or runs/list shows it."""
    snap = record.snapshot(now_ms)
    view: dict[str, Any] = {
        "run_id": record.run_id,
        "job_id": record.job_id,
        "run_name": record.spec.run_name,
        "run_type": "SUBMIT_RUN",
        "number_in_job": record.run_id,
        "original_attempt_run_id": record.run_id,
        "creator_user_name": creator_of(record),
        "run_as_user_name": creator_of(record),
        "attempt_number": 0,
        "trigger": "ONE_TIME",
        # Unverified: that a run keeps the format it was submitted in.
        "format": "SINGLE_TASK" if record.spec.single_task else "MULTI_TASK",
        "state": state_view(snap),
        "status": status_view(snap),
        **_times(snap, with_queue=True),
        "run_page_url": site.page_url(record.job_id, record.run_id),
    }
    for echoed in ("git_source", "description", "environments"):
        if echoed in record.spec.body:
            view[echoed] = record.spec.body[echoed]
    if tasks:
        view.update(_arrays(record, now_ms, site, tasks_offset, tasks_page))
    return view


def _arrays(
    record: RunRecord, now_ms: int, site: Site, offset: int, page: int | None
) -> dict[str, Any]:
    """The run's arrays (tasks, job_clusters) from ``offset``; with ``page`` (API 2.2) at
    most that many of each, and ``next_page_token`` while either has more: each page carries
    the next slice of every array, which is how the SDK merges them."""
    end = None if page is None else offset + page
    out: dict[str, Any] = {
        "tasks": [task_view(record, task, now_ms, site) for task in record.tasks[offset:end]]
    }
    clusters = record.spec.body.get("job_clusters")
    longest = len(record.tasks)
    if isinstance(clusters, list):
        longest = max(longest, len(clusters))
        if clusters[offset:end]:
            out["job_clusters"] = clusters[offset:end]
    if end is not None and end < longest:
        out["next_page_token"] = encode_offset(end)
    return out


def has_more(view: dict[str, Any]) -> dict[str, Any]:
    """A runs/get page as a 2.2 runs/list item: no token, ``has_more`` when arrays were cut
    (only the first 100 of each are listed; runs/get pages the rest)."""
    token = view.pop("next_page_token", None)
    if token is not None:
        view["has_more"] = True
    return view


def task_view(record: RunRecord, task: TaskRun, now_ms: int, site: Site) -> dict[str, Any]:
    """One entry of a run's ``tasks``: the task's spec echoed, with its own run id and state."""
    snap = record.task_snapshot(task, now_ms)
    view = {k: v for k, v in task.spec.body.items() if k not in _OWN_TASK_KEYS}
    view.update(
        {
            "task_key": task.spec.task_key,
            "run_id": task.run_id,
            "attempt_number": 0,
            "state": state_view(snap),
            "status": status_view(snap),
            **_times(snap, with_queue=True),
            "run_page_url": site.page_url(record.job_id, task.run_id),
        }
    )
    view.setdefault("run_if", "ALL_SUCCESS")
    if task.spec.for_each is not None:
        view[FOR_EACH] = {**view[FOR_EACH], "stats": for_each_stats(len(task.iterations), snap)}
    cluster = _cluster_instance(task, snap)
    if cluster is not None:
        view["cluster_instance"] = cluster
    return view


def task_run_view(record: RunRecord, task: TaskRun, now_ms: int, site: Site) -> dict[str, Any]:
    """A task run asked for by its own id (runs/get, get-output metadata)."""
    view = task_view(record, task, now_ms, site)
    view.update(
        {
            "job_id": record.job_id,
            "job_run_id": record.run_id,
            "run_name": record.spec.run_name,
            "run_type": "SUBMIT_RUN",
            "number_in_job": task.run_id,
            "original_attempt_run_id": task.run_id,
            "creator_user_name": creator_of(record),
            "run_as_user_name": creator_of(record),
            "trigger": "ONE_TIME",
        }
    )
    return view


def output_view(
    record: RunRecord, task: TaskRun, now_ms: int, site: Site, *, of_run: bool = False
) -> dict[str, Any]:
    """runs/get-output of one task run: its metadata, and what it left once it ended.

    ``of_run`` when asked for by the id of the task's single-task run: the metadata is then
    that run's.
    """
    metadata = (
        run_view(record, now_ms, site) if of_run else task_run_view(record, task, now_ms, site)
    )
    out: dict[str, Any] = {"metadata": metadata}
    snap = record.task_snapshot(task, now_ms)
    if not snap.terminal or snap.ending is None:
        return out
    payload = task.spec.body[task.spec.task_type]
    if task.spec.task_type == "notebook_task":
        notebook: dict[str, Any] = {"truncated": False}
        result = (payload.get("base_parameters") or {}).get(OUTPUT_PARAM)
        if result is not None and snap.result_state == "SUCCESS":
            notebook["result"] = result
        out["notebook_output"] = notebook
    elif snap.execution_ms:
        out["logs"] = (
            f"lakegate emulator: task {task.spec.task_key} ran for {snap.execution_ms} ms\n"
        )
        out["logs_truncated"] = False
    if snap.result_state not in (None, "SUCCESS"):
        out["error"] = f"{snap.ending.code}: {snap.ending.message}"
        if snap.result_state == "FAILED" and snap.ending.code == "RUN_EXECUTION_ERROR":
            out["error_trace"] = (
                "Traceback (most recent call last):\n"
                f'  File "<lakegate-emulator>", line 1, in {task.spec.task_key}\n'
                f"RuntimeError: the task asked to fail ({RESULT_PARAM})\n"
            )
    return out


def _cluster_instance(task: TaskRun, snap: Snapshot) -> dict[str, str] | None:
    body = task.spec.body
    if "existing_cluster_id" in body:
        cluster_id = str(body["existing_cluster_id"])
    elif "new_cluster" in body:
        digest = hashlib.sha256(str(task.run_id).encode()).hexdigest()
        cluster_id = f"{digest[:4]}-{digest[4:10]}-{digest[10:18]}"
    else:
        return None
    # A cluster exists once the task has reached RUNNING; failed or cancelled setup has none.
    reached = snap.life_cycle_state == "RUNNING" or snap.execution_ms > 0
    if snap.life_cycle_state not in _WITH_CLUSTER or not reached:
        return None
    context = int(hashlib.sha256(cluster_id.encode()).hexdigest()[:15], 16)
    return {"cluster_id": cluster_id, "spark_context_id": str(context)}


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"tasks:{offset}".encode()).decode().rstrip("=")


def decode_offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, value = text.partition(":")
    return int(value) if kind == "tasks" and value.isdigit() else None


def encode_cursor(direction: str, run_id: int) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{run_id}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[Literal["before", "after"], int] | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, value = text.partition(":")
    if not value.isdigit():
        return None
    if kind == "before":
        return "before", int(value)
    if kind == "after":
        return "after", int(value)
    return None
