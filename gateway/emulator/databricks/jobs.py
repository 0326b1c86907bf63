"""Jobs API one-time runs, under /api/2.0/, 2.1/ and 2.2/: submit, get, cancel, list, output.

Behaviour follows shared/reference/databricks.md section 1. Choices where it is silent:

- API 2.0 (the legacy databricks-cli's default) answers as 2.1 does, in the multi-task
  shape, save for the one 2.0 difference the reference records: runs/list's limit goes up
  to 26. 2.2 alone pages a run's arrays (tasks, job_clusters) at 100: runs/get with
  ``next_page_token``, runs/list items (``expand_tasks``) cut at 100 with ``has_more``;
  runs/get of a for-each task run pages its ``iterations`` the same way (``for_each``).
- runs/list shows only the runs the calling principal created: lakegate gives each namespace
  its own identity and relies on not seeing the others' runs. runs/get and runs/cancel
  accept any run id of the workspace, as a workspace admin's would.
- runs/cancel-all with ``all_queued_runs`` cancels the caller's queued runs only.
- a task run id works wherever a run id does, as on the real service.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from gateway.emulator.databricks.for_each_views import for_each_run_view
from gateway.emulator.databricks.params import BadParam, Params, get_params, post_params
from gateway.emulator.databricks.runs import LimitReached, ListQuery
from gateway.emulator.databricks.validation import Invalid, parse_submit
from gateway.emulator.databricks.views import (
    TASKS_PAGE_SIZE,
    Site,
    decode_cursor,
    decode_offset,
    encode_cursor,
    has_more,
    output_view,
    run_view,
    task_run_view,
)
from gateway.emulator.databricks.workspace import PRINCIPAL, Workspace, api_error, invalid
from gateway.logs import get_logger

log = get_logger(__name__)

API_PREFIX = r"/api/{version:2\.[012]}/jobs/runs"
LIST_MAX = 25
# 2.0 refuses a limit over 26: "Invalid limit 27 - it has to be no more than 26." is what the
# legacy CLI, which calls 2.0 by default, got back (reference section 1.6, databricks-cli #464).
LIST_MAX_2_0 = 26
LIST_DEFAULT = 20
_RUN_TYPES = frozenset({"JOB_RUN", "WORKFLOW_RUN", "SUBMIT_RUN"})
_MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


def _no_such_run(run_id: int) -> web.Response:
    return invalid(f"Run {run_id} does not exist.")


async def _get_params(request: web.Request) -> Params:
    # A GET may carry its parameters as a JSON body (Airflow's async hook does). Bytes that
    # are not UTF-8 are read with replacement characters, so they cannot make a 500.
    text = (await request.read()).decode("utf-8", errors="replace")
    return get_params(request.query, text)


def _refused(exc: BadParam) -> web.Response:
    return api_error(400, exc.error_code, str(exc))


def _list_max(version: str) -> int:
    return LIST_MAX_2_0 if version == "2.0" else LIST_MAX


class JobsApi:
    """The handlers; the workspace is their only state."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{API_PREFIX}/submit", self.submit),
            web.get(f"{API_PREFIX}/get", self.get),
            web.post(f"{API_PREFIX}/cancel", self.cancel),
            web.post(f"{API_PREFIX}/cancel-all", self.cancel_all),
            web.get(f"{API_PREFIX}/list", self.list),
            web.get(f"{API_PREFIX}/get-output", self.get_output),
        ]

    def _site(self, request: web.Request) -> Site:
        base = self._ws.config.public_url or str(request.url.origin())
        return Site(base, self._ws.config.workspace_id)

    async def submit(self, request: web.Request) -> web.Response:
        spec = parse_submit(await request.text())
        if isinstance(spec, Invalid):
            return api_error(400, spec.error_code, spec.message)
        principal = request[PRINCIPAL]
        now = self._ws.now_ms()
        registry = self._ws.registry
        try:
            run_id, created = registry.submit(spec, principal, now)
        except LimitReached as exc:
            log.info("emulator_run_refused", principal=principal.name, reason=str(exc))
            next_end = registry.next_end_ms()
            wait = math.ceil((next_end - now) / 1000) if next_end is not None else 1
            return api_error(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                str(exc),
                retry_after=max(1, wait),
                with_request_info=True,
            )
        log.info(
            "emulator_run_submitted" if created else "emulator_run_deduplicated",
            run_id=run_id,
            principal=principal.name,
            run_name=spec.run_name,
        )
        return web.json_response({"run_id": run_id})

    async def get(self, request: web.Request) -> web.Response:
        params = await _get_params(request)
        try:
            run_id = params.required_integer("run_id")
            token = params.string("page_token")
        except BadParam as exc:
            return _refused(exc)
        now = self._ws.now_ms()
        offset, page = 0, None
        if request.match_info["version"] == "2.2":
            page = TASKS_PAGE_SIZE
            if token:
                decoded = decode_offset(token)
                if decoded is None:
                    return invalid(f"Invalid page token: {token}")
                offset = decoded
        record = self._ws.registry.get(run_id)
        if record is None:
            found = self._ws.registry.get_task(run_id)
            if found is None:
                return _no_such_run(run_id)
            parent, task = found
            if task.spec.for_each is not None:
                view = for_each_run_view(
                    parent, task, now, self._site(request), offset=offset, page=page
                )
                return web.json_response(view)
            return web.json_response(task_run_view(parent, task, now, self._site(request)))
        view = run_view(record, now, self._site(request), tasks_offset=offset, tasks_page=page)
        return web.json_response(view)

    async def cancel(self, request: web.Request) -> web.Response:
        try:
            run_id = post_params(await request.text()).required_integer("run_id")
        except BadParam as exc:
            return _refused(exc)
        if not self._ws.registry.cancel(run_id, self._ws.now_ms()):
            return _no_such_run(run_id)
        log.info("emulator_run_cancel_requested", run_id=run_id, principal=request[PRINCIPAL].name)
        return web.json_response({})

    async def cancel_all(self, request: web.Request) -> web.Response:
        try:
            params = post_params(await request.text())
            job_id = params.integer("job_id")
        except BadParam as exc:
            return _refused(exc)
        if job_id is None and params.raw("all_queued_runs") is not True:
            return invalid("Either job_id or all_queued_runs must be specified.")
        principal = request[PRINCIPAL]
        count = self._ws.registry.cancel_all(principal, self._ws.now_ms(), job_id=job_id)
        log.info("emulator_runs_cancelled", principal=principal.name, count=count, job_id=job_id)
        return web.json_response({})

    async def list(self, request: web.Request) -> web.Response:
        params = await _get_params(request)
        try:
            query = _list_query(params, _list_max(request.match_info["version"]))
        except BadParam as exc:
            return _refused(exc)
        now = self._ws.now_ms()
        page = self._ws.registry.owned_by(request[PRINCIPAL], query, now)
        site = self._site(request)
        # 2.2 lists the first 100 of each array and says has_more; 2.0/2.1 list them all.
        cut = TASKS_PAGE_SIZE if request.match_info["version"] == "2.2" else None
        body: dict[str, Any] = {}
        if page.runs:
            body["runs"] = [
                has_more(run_view(r, now, site, tasks=query.expand_tasks, tasks_page=cut))
                for r in page.runs
            ]
        body["has_more"] = page.has_more
        if page.next_token is not None:
            body["next_page_token"] = encode_cursor("before", page.next_token)
        if page.prev_token is not None:
            body["prev_page_token"] = encode_cursor("after", page.prev_token)
        return web.json_response(body)

    async def get_output(self, request: web.Request) -> web.Response:
        params = await _get_params(request)
        try:
            run_id = params.required_integer("run_id")
        except BadParam as exc:
            return _refused(exc)
        now = self._ws.now_ms()
        record = self._ws.registry.get(run_id)
        if record is not None:
            # A single-task run answers for its one task; a multi-task run never does, even
            # with one task (reference section 1.7).
            if not record.spec.single_task:
                return invalid(_MULTI_TASK_OUTPUT)
            view = output_view(record, record.tasks[0], now, self._site(request), of_run=True)
            return web.json_response(view)
        found = self._ws.registry.get_task(run_id)
        if found is None:
            return _no_such_run(run_id)
        return web.json_response(output_view(*found, now, self._site(request)))


def _list_query(params: Params, list_max: int) -> ListQuery:
    active_only = params.boolean("active_only")
    completed_only = params.boolean("completed_only")
    if active_only and completed_only:
        raise BadParam("active_only and completed_only cannot both be true.")
    limit = params.integer("limit")
    if limit is None:
        limit = LIST_DEFAULT
    elif limit == 0:
        limit = list_max
    elif limit > list_max:
        raise BadParam(f"Invalid limit {limit} - it has to be no more than {list_max}.")
    elif limit < 0:
        raise BadParam(f"Invalid limit {limit} - it has to be no less than 0.")
    offset = params.integer("offset") or 0
    if offset < 0:
        raise BadParam(f"Invalid offset {offset} - it has to be no less than 0.")
    run_type = params.string("run_type")
    if run_type is not None and run_type not in _RUN_TYPES:
        raise BadParam(f"Invalid value for parameter run_type: {run_type}")
    cursor = None
    token = params.string("page_token")
    if token:
        cursor = decode_cursor(token)
        if cursor is None:
            raise BadParam(f"Invalid page token: {token}")
    return ListQuery(
        limit=limit,
        active_only=active_only,
        completed_only=completed_only,
        job_id=params.integer("job_id"),
        start_time_from=params.integer("start_time_from"),
        start_time_to=params.integer("start_time_to"),
        offset=offset,
        cursor=cursor,
        submit_runs=run_type in (None, "SUBMIT_RUN"),
        expand_tasks=params.boolean("expand_tasks"),
    )
