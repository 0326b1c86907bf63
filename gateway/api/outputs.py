"""``GET /v1/namespaces/{namespace}/runs/{run_id}/output``: what each task of a run left.

Databricks keeps a run's output per task run (runs/get-output takes a task run id), so the
run's tasks come from its runs/get answer (every 2.2 page of it, ``gateway.databricks.pages``)
and each task's output from get-output, both asked with the identity the run was submitted
under, as the poller follows it. A run Databricks never had (queued, refused, cancelled before
submission) has no tasks, and its ``error`` is why it ended. The shaping here is pure; the
handler does the two kinds of call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from gateway.api.callers import authorize
from gateway.api.schemas import parse_namespace, parse_run_id
from gateway.appkeys import REMOTE_RUNS, SERVICE, RemoteRuns
from gateway.databricks.pages import whole_run
from gateway.model import RunRecord, RunState

# What runs/get-output says about a task besides its metadata, in the order people read it.
OUTPUT_FIELDS = (
    "error",
    "error_trace",
    "notebook_output",
    "logs",
    "logs_truncated",
    "sql_output",
    "dbt_output",
    "run_job_output",
    "clean_rooms_notebook_output",
    "info",
)


def remote_tasks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each task of a runs/get answer: its key, its task run id (None until Databricks made
    it) and its state, in the order Databricks lists them."""
    tasks = payload.get("tasks")
    out: list[dict[str, Any]] = []
    for task in tasks if isinstance(tasks, list) else ():
        if not isinstance(task, Mapping):
            continue
        task_run_id = task.get("run_id")
        valid = isinstance(task_run_id, int) and not isinstance(task_run_id, bool)
        state = task.get("state")
        out.append(
            {
                "task_key": task.get("task_key"),
                "run_id": task_run_id if valid else None,
                "state": dict(state) if isinstance(state, Mapping) else {},
            }
        )
    return out


def task_output(task: Mapping[str, Any], payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The task with what get-output said of it (never its metadata, which repeats runs/get)."""
    shown = dict(task)
    for key in OUTPUT_FIELDS:
        if payload is not None and key in payload:
            shown[key] = payload[key]
    return shown


def output_view(run: RunRecord, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's output as the API shows it."""
    view: dict[str, Any] = {
        "id": run.id,
        "namespace": run.namespace,
        "state": run.state.value,
        "state_message": run.state_message,
        "databricks_run_id": run.databricks_run_id,
        "run_page_url": run.run_page_url,
        "tasks": [dict(task) for task in tasks],
    }
    if run.terminal and run.state is not RunState.SUCCEEDED and run.state_message:
        view["error"] = run.state_message
    return view


async def _remote_tasks(remote: RemoteRuns, run: RunRecord) -> list[dict[str, Any]]:
    """Every task of the run: Databricks pages them at 2.2, followed by the one page
    follower the facade uses too (bounded; a token repeated is a DatabricksError, 502)."""

    async def page(query: Mapping[str, str]) -> dict[str, Any]:
        return await remote.remote_run(run, params=query or None)

    return remote_tasks(await whole_run(page, {}))


async def _tasks_of(remote: RemoteRuns, run: RunRecord) -> list[dict[str, Any]]:
    if run.databricks_run_id is None:
        return []
    tasks = await _remote_tasks(remote, run)
    # One get-output per task; a task Databricks has not started yet has nothing to ask for.
    return [
        task_output(
            task,
            None
            if task["run_id"] is None
            else await remote.remote_output(run.namespace, task["run_id"], run=run),
        )
        for task in tasks
    ]


async def get_run_output(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.get_output")
    namespace = parse_namespace(request.match_info["namespace"])
    run_id = parse_run_id(request.match_info["run_id"])
    run = await request.config_dict[SERVICE].get(namespace, run_id)
    tasks = await _tasks_of(request.config_dict[REMOTE_RUNS], run)
    return web.json_response(output_view(run, tasks))
