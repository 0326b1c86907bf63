"""A for-each task run as runs/get shows it: the task run, its one task, its iterations.

Asked for by the for-each task's own run id, Databricks answers with the task run's metadata,
``tasks`` holding the for-each task alone and ``iterations`` its iterations' task runs, 100
per page under 2.2 (``next_page_token`` while more remain; the task repeats on every page,
which is why a client merges ``iterations`` and not ``tasks`` then), all at once under 2.0
and 2.1.
"""

from __future__ import annotations

from typing import Any

from gateway.emulator.databricks.runs import RunRecord, TaskRun
from gateway.emulator.databricks.views import Site, encode_offset, task_run_view, task_view


def for_each_run_view(
    record: RunRecord,
    task: TaskRun,
    now_ms: int,
    site: Site,
    *,
    offset: int = 0,
    page: int | None = None,
) -> dict[str, Any]:
    """runs/get of the for-each task run ``task``; ``page``: at most that many iterations
    from ``offset`` (API 2.2)."""
    end = None if page is None else offset + page
    view = task_run_view(record, task, now_ms, site)
    view["tasks"] = [task_view(record, task, now_ms, site)]
    view["iterations"] = [
        task_view(record, iteration, now_ms, site) for iteration in task.iterations[offset:end]
    ]
    if end is not None and end < len(task.iterations):
        view["next_page_token"] = encode_offset(end)
    return view
