"""The facade's handlers: runs/submit, get, cancel, list and get-output, over the run service.

Every run goes through the same ``RunService`` as the /v1 API, so quotas, idempotency,
identities and webhooks hold alike; the ``run_id`` a client sees is lakegate's ledger id. The
shapes are decided in the pure ``requests``, ``wire`` and ``errors``; this module is only HTTP
and the service calls.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.callers import authenticate, authorize, default_namespace
from gateway.api.compat.errors import CompatError, no_such_run, rejection
from gateway.api.compat.requests import (
    LABELS_HEADER,
    MAX_LIST_LIMIT,
    MAX_LIST_LIMIT_2_0,
    NAMESPACE_HEADER,
    ListQuery,
    PageToken,
    Query,
    body_run_id,
    get_parameters,
    parse_json_object,
    parse_list_query,
    parse_namespace,
    parse_run_id,
    parse_submit,
    remote_get_params,
)
from gateway.api.compat.wire import (
    ledger_output,
    ledger_run,
    list_body,
    output_task_run_id,
    remote_output,
    remote_run,
    remote_task_run,
)
from gateway.api.middlewares import read_body
from gateway.appkeys import CALLERS, REMOTE_RUNS, SERVICE
from gateway.errors import DatabricksRunNotFound, LakegateError, NotFound, RunRejected
from gateway.logs import bound
from gateway.model import RunRecord, RunState
from gateway.runs.types import RunService

__all__ = ["setup_compat_routes"]

# Under the sub-application's /api prefix.
RUNS = r"/{version:2\.[012]}/jobs/runs"
# The ledger is read in blocks while runs/list filters by start time; the scan stops after
# this many rows and hands the client a page token, so one request never reads a whole ledger.
_LIST_BLOCK = 100
_LIST_SCAN = 2000


def setup_compat_routes(app: web.Application) -> None:
    router = app.router
    router.add_post(RUNS + "/submit", submit, name="compat_submit")
    router.add_get(RUNS + "/get", get, name="compat_get", allow_head=False)
    router.add_post(RUNS + "/cancel", cancel, name="compat_cancel")
    router.add_get(RUNS + "/list", list_runs, name="compat_list", allow_head=False)
    router.add_get(RUNS + "/get-output", get_output, name="compat_get_output", allow_head=False)


# --- shared steps ---------------------------------------------------------------------------


async def namespace_for(request: web.Request, action: str) -> str:
    """The namespace the request acts for, once the caller is authorized for it.

    First ``X-Lakegate-Namespace``, then the namespace the Host names (for unchanged clients,
    under ``callers.namespace_host_pattern``), then the caller's default. Either way the
    caller must be authorized for it: the Host and the default only choose.
    """
    try:
        namespace = parse_namespace(request.headers.getall(NAMESPACE_HEADER, []))
    except CompatError:
        # An unknown caller hears 401 (audited) before anything about its headers.
        authenticate(request, action)
        raise
    if namespace is None:
        gate = request.config_dict.get(CALLERS)
        namespace = gate.namespace_from_host(request.host) if gate is not None else None
    if namespace is None:
        namespace = default_namespace(request)
    if namespace is None:
        # An unknown caller hears 401 (audited) before being told about the header.
        authenticate(request, action)
        raise CompatError(
            f"This caller may act for several namespaces: send {NAMESPACE_HEADER} with the "
            "one to use, call the namespace's own host name, or give the credential a "
            "default_namespace."
        )
    await authorize(request, namespace, action)
    return namespace


def origin_of(request: web.Request) -> str:
    """The gateway as this client reached it, for URLs it can follow back."""
    return str(request.url.origin())


def query_of(request: web.Request) -> Query:
    query = request.query
    return {name: query.getall(name) for name in query}


async def parameters_of(request: web.Request) -> Query:
    """A GET's parameters: its query string, and a JSON body for what the query lacks."""
    return get_parameters(query_of(request), await read_body(request))


# --- handlers -------------------------------------------------------------------------------


async def submit(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.submit")
    with bound(namespace=namespace):
        submission, token = parse_submit(
            await read_body(request), request.headers.getall(LABELS_HEADER, [])
        )
        service = request.config_dict[SERVICE]
        try:
            outcome = await service.submit(namespace, submission, idempotency_key=token)
        except RunRejected as exc:
            raise rejection(await service.get(namespace, exc.run_id)) from exc
    if outcome.run.state is RunState.REJECTED:
        # Refused inline, or an earlier attempt with this token was: a Databricks client
        # expects Databricks' own 400 and message, not a run id it would only find failed.
        raise rejection(outcome.run)
    return web.json_response({"run_id": outcome.run.id})


async def get(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.get")
    query = await parameters_of(request)
    run_id = parse_run_id(query)
    params = remote_get_params(query)
    with bound(namespace=namespace, run_id=run_id):
        try:
            run = await request.config_dict[SERVICE].get(namespace, run_id)
        except NotFound:
            return web.json_response(await task_run_of(request, namespace, run_id, params))
        if run.databricks_run_id is None:
            return web.json_response(ledger_run(run, origin_of(request)))
        try:
            payload = await request.config_dict[REMOTE_RUNS].remote_run(run, params=params)
        except DatabricksRunNotFound:
            # Databricks deletes runs after 60 days; the ledger still knows how it went.
            return web.json_response(ledger_run(run, origin_of(request)))
        except LakegateError as exc:
            if not (run.terminal and exc.transient):
                raise
            # The outcome of an ended run is the ledger's to tell; no need to fail the client
            # because Databricks is briefly away.
            return web.json_response(ledger_run(run, origin_of(request)))
    return web.json_response(remote_run(payload, run))


async def task_run_of(
    request: web.Request, namespace: str, run_id: int, params: dict[str, str]
) -> dict[str, Any]:
    """runs/get of an id the ledger does not know: a task run of one of the namespace's runs,
    as Databricks accepts it; anything else (another namespace's task run too) is no run."""
    try:
        payload, run = await request.config_dict[REMOTE_RUNS].remote_task_run(
            namespace, run_id, params=params
        )
    except DatabricksRunNotFound:
        raise no_such_run(run_id) from None
    return remote_task_run(payload, run)


async def cancel(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.cancel")
    run_id = body_run_id(parse_json_object(await read_body(request)))
    service = request.config_dict[SERVICE]
    with bound(namespace=namespace, run_id=run_id):
        try:
            await service.cancel(namespace, run_id)
        except NotFound:
            # A task run id cancels the run it belongs to: lakegate follows and ends runs,
            # not single tasks, so the ledger records the cancel and the poller carries it out.
            try:
                _, run = await request.config_dict[REMOTE_RUNS].remote_task_run(namespace, run_id)
            except DatabricksRunNotFound:
                raise no_such_run(run_id) from None
            await service.cancel(namespace, run.id)
    return web.json_response({})


async def list_runs(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.list")
    version = request.match_info["version"]
    query = parse_list_query(
        await parameters_of(request),
        max_limit=MAX_LIST_LIMIT_2_0 if version == "2.0" else MAX_LIST_LIMIT,
    )
    if query.matches_nothing:
        return web.json_response(list_body([], None, origin_of(request)))
    with bound(namespace=namespace):
        runs, next_page = await scan(request.config_dict[SERVICE], namespace, query)
    return web.json_response(
        list_body(runs, next_page.encode() if next_page else None, origin_of(request))
    )


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


async def get_output(request: web.Request) -> web.Response:
    namespace = await namespace_for(request, "runs.get_output")
    run_id = parse_run_id(await parameters_of(request))
    with bound(namespace=namespace, run_id=run_id):
        return web.json_response(await output_of(request, namespace, run_id))


async def output_of(request: web.Request, namespace: str, run_id: int) -> dict[str, Any]:
    """A lakegate run id stands for its only task's run; any other id is a task run id,
    asked of Databricks with the namespace's own identity, whose ACLs decide."""
    remote = request.config_dict[REMOTE_RUNS]
    try:
        run: RunRecord | None = await request.config_dict[SERVICE].get(namespace, run_id)
    except NotFound:
        run = None
    try:
        if run is None:
            return remote_output(await remote.remote_output(namespace, run_id), None)
        if run.databricks_run_id is None:
            return ledger_output(run, origin_of(request))
        task_run_id = output_task_run_id(await remote.remote_run(run))
        return remote_output(await remote.remote_output(namespace, task_run_id, run=run), run)
    except DatabricksRunNotFound:
        raise no_such_run(run_id) from None
