"""runs/list: the namespace's runs from the ledger, each shown as runs/get would show it.

The ledger decides which runs and in what order (newest first, filters, pages); each item is
then what runs/get answers for that run (Databricks' own JSON once it has the run, so its
``job_id``, state and times are Databricks'), without ``tasks`` unless ``expand_tasks``
(all of them under 2.0/2.1; under 2.2 the first 100 and ``has_more``, as Databricks lists).
Runs Databricks refused (REJECTED) are left out: their submit was answered with Databricks'
400, which is how a refused submit looks to a client, and Databricks lists no such run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway.api.compat.requests import (
    MAX_LIST_LIMIT,
    MAX_LIST_LIMIT_2_0,
    ListQuery,
    PageToken,
    parse_list_query,
)
from gateway.api.compat.steps import answers_whole, namespace_for, parameters_of, shown_run
from gateway.api.compat.wire import list_body, list_item
from gateway.appkeys import SERVICE
from gateway.databricks.pages import PAGE_SIZE
from gateway.logs import bound
from gateway.model import RunRecord
from gateway.runs.types import RunService

__all__ = ["list_runs", "scan"]

# The ledger is read in blocks while runs/list filters by start time; the scan stops after
# this many rows and hands the client a page token, so one request never reads a whole ledger.
_LIST_BLOCK = 100
_LIST_SCAN = 2000
# Databricks calls one page may have in flight at once (live runs are read on every page).
_LIST_CONCURRENCY = 8


async def list_runs(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.list")
    version = request.match_info["version"]
    query = parse_list_query(
        await parameters_of(request),
        max_limit=MAX_LIST_LIMIT_2_0 if version == "2.0" else MAX_LIST_LIMIT,
    )
    if query.matches_nothing:
        return web.json_response(list_body([], None))
    with bound(namespace=namespace):
        runs, next_page = await scan(request.config_dict[SERVICE], namespace, query)
        items = await shown_items(request, runs, expand_tasks=query.expand_tasks)
    return web.json_response(list_body(items, next_page.encode() if next_page else None))


async def shown_items(
    request: web.Request, runs: Sequence[RunRecord], *, expand_tasks: bool
) -> list[dict[str, Any]]:
    """Each run as runs/get shows it, read concurrently; one failure fails the page, as the
    same run's runs/get would fail. Expanded tasks are all of them under 2.0/2.1; under 2.2
    the first 100, with ``has_more``, as Databricks lists them."""
    slots = asyncio.Semaphore(_LIST_CONCURRENCY)
    # Without expand_tasks no arrays are listed, so no page past the first is ever needed.
    whole = expand_tasks and answers_whole(request)
    cut = None if answers_whole(request) else PAGE_SIZE

    async def one(run: RunRecord) -> dict[str, Any]:
        async with slots:
            shown = await shown_run(request, run, whole=whole)
            return list_item(shown, expand_tasks=expand_tasks, cut=cut)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(run)) for run in runs]
    return [task.result() for task in tasks]


async def scan(
    service: RunService,
    namespace: str,
    query: ListQuery,
    *,
    block_size: int = _LIST_BLOCK,
    budget: int = _LIST_SCAN,
) -> tuple[list[RunRecord], PageToken | None]:
    """One page of the namespace's runs, newest first, and where the next page starts.

    At most about ``budget`` ledger rows are read; a page cut short by it is shorter than
    the limit (possibly empty) and still hands out a token, which clients follow anyway.
    """
    page = query.page or PageToken(None)
    cursor, skip = page.cursor, page.skip
    # offset (deprecated) counts matching runs from the newest; a page token carries what is
    # left of it, and replaces the one the client keeps sending along.
    to_skip = query.offset if query.page is None else page.offset
    # Without a time filter every ledger row matches: one row more than a page tells whether
    # another page follows.
    block = block_size
    if not query.filters_by_time:
        block = min(block_size, query.limit + 1 + to_skip + skip)
    found: list[RunRecord] = []
    scanned = 0
    while True:
        ledger = await service.list(namespace, states=query.states, limit=block, cursor=cursor)
        for index, run in enumerate(ledger.runs):
            if index < skip or not query.admits(run):
                if query.past_window(run):
                    return found, None
                continue
            if to_skip:
                to_skip -= 1
                continue
            if len(found) == query.limit:
                return found, PageToken(cursor, index)
            found.append(run)
        skip = max(0, skip - len(ledger.runs))
        scanned += len(ledger.runs)
        if ledger.next_cursor is None:
            return found, None
        cursor = ledger.next_cursor
        if scanned >= budget:
            return found, PageToken(cursor, skip, to_skip)
