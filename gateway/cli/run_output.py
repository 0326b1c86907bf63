"""``lakegate output -n NS RUN``: what each task of a run left (``GET .../runs/{id}/output``).

Pure formatting of the API's answer, task by task: its state, then its error and error trace,
its notebook result, its logs, and any other output Databricks gave (SQL, dbt, a run-job
task's), printed as JSON. ``-o json`` prints the answer as it came.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from gateway.cli.client import LakegateClient
from gateway.cli.invocation import Progress

# Shown by their own blocks below; every other key of a task is output to print as JSON.
_TASK_KEYS = frozenset({"task_key", "run_id", "state", "error", "error_trace", "notebook_output"})
_LOG_KEYS = frozenset({"logs", "logs_truncated"})


def _indented(text: str) -> list[str]:
    return ["    " + line for line in text.rstrip("\n").splitlines()] or ["    "]


def _state(state: Mapping[str, Any]) -> str:
    shown = state.get("result_state") or state.get("life_cycle_state") or "-"
    message = state.get("state_message")
    return f"{shown}: {message}" if message else str(shown)


def _block(title: str, text: str, truncated: bool = False) -> list[str]:
    return [f"  {title}{' (truncated by Databricks)' if truncated else ''}:", *_indented(text)]


def format_task(task: Mapping[str, Any]) -> list[str]:
    run_id = task.get("run_id")
    head = f"task {task.get('task_key')}" + (f" (task run {run_id})" if run_id else "")
    lines = [f"{head}  {_state(task.get('state') or {})}"]
    if run_id is None:
        return [*lines, "  not started yet: no output"]
    if task.get("error"):
        lines += _block("error", str(task["error"]))
    if task.get("error_trace"):
        lines += _block("error trace", str(task["error_trace"]))
    notebook = task.get("notebook_output")
    if isinstance(notebook, Mapping) and "result" in notebook:
        lines += _block("result", str(notebook["result"]), bool(notebook.get("truncated")))
    if task.get("logs"):
        lines += _block("logs", str(task["logs"]), bool(task.get("logs_truncated")))
    for key in sorted(set(task) - _TASK_KEYS - _LOG_KEYS):
        lines += _block(key, json.dumps(task[key], indent=2))
    if len(lines) == 1:
        lines.append("  no output")
    return lines


def format_output(view: Mapping[str, Any]) -> str:
    """The run on one line, why it ended if it did not succeed, then each task's output."""
    head = f"run {view.get('id')}  {view.get('state')}"
    if view.get("databricks_run_id") is not None:
        head += f"  databricks run {view['databricks_run_id']}"
    lines = [head]
    if view.get("run_page_url"):
        lines.append(f"run page: {view['run_page_url']}")
    if view.get("error"):
        lines.append(f"error: {view['error']}")
    tasks = view.get("tasks") or []
    if not tasks:
        lines.append("no task ran at Databricks: there is no output to show")
    for task in tasks:
        lines += ["", *format_task(task)]
    return "\n".join(lines)


async def output_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    view = await client.output(progress.target.namespace, args.run_id)
    print(json.dumps(view, indent=2) if progress.target.output == "json" else format_output(view))
    return 0
