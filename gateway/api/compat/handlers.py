"""The facade's handlers: runs/submit, get, cancel and get-output over the run service, and
the routes (runs/list is ``listing``).

Every run goes through the same ``RunService`` as the /v1 API, so quotas, idempotency,
identities and webhooks hold alike; the ``run_id`` a client sees is lakegate's ledger id. The
shapes are decided in the pure ``requests``, ``wire`` and ``errors``; the shared steps
(namespace, parameters, what runs/get shows) are ``steps``; this module is only HTTP and the
service calls.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.compat.errors import no_such_run, rejection, token_reused
from gateway.api.compat.listing import list_runs
from gateway.api.compat.requests import (
    LABELS_HEADER,
    body_run_id,
    parse_json_object,
    parse_run_id,
    parse_submit,
    remote_get_params,
)
from gateway.api.compat.steps import (
    answers_whole,
    namespace_for,
    origin_of,
    parameters_of,
    shown_run,
    task_run_answer,
)
from gateway.api.compat.wire import (
    ledger_output,
    output_task_run_id,
    remote_output,
    remote_task_run,
)
from gateway.api.middlewares import read_body
from gateway.appkeys import REMOTE_RUNS, SERVICE
from gateway.errors import Conflict, DatabricksRunNotFound, NotFound, RunRejected
from gateway.logs import bound
from gateway.model import RunRecord, RunState

__all__ = ["setup_compat_routes"]

# Under the sub-application's /api prefix.
RUNS = r"/{version:2\.[012]}/jobs/runs"


def setup_compat_routes(app: web.Application) -> None:
    router = app.router
    router.add_post(RUNS + "/submit", submit, name="compat_submit")
    router.add_get(RUNS + "/get", get, name="compat_get", allow_head=False)
    router.add_post(RUNS + "/cancel", cancel, name="compat_cancel")
    router.add_get(RUNS + "/list", list_runs, name="compat_list", allow_head=False)
    router.add_get(RUNS + "/get-output", get_output, name="compat_get_output", allow_head=False)


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
        except Conflict as exc:
            # Databricks would hand back the original run; lakegate refuses (README,
            # Compatibility), in the words of the client's own field.
            raise token_reused(token or "") from exc
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
    whole = answers_whole(request)
    if whole:
        # 2.0 and 2.1 have no pages: every page is followed and merged.
        params.pop("page_token", None)
    with bound(namespace=namespace, run_id=run_id):
        try:
            run = await request.config_dict[SERVICE].get(namespace, run_id)
        except NotFound:
            return web.json_response(await task_run_of(request, namespace, run_id, params))
        return web.json_response(await shown_run(request, run, params, whole=whole))


async def task_run_of(
    request: web.Request, namespace: str, run_id: int, params: dict[str, str]
) -> dict[str, Any]:
    """runs/get of an id the ledger does not know: a task run of one of the namespace's runs,
    as Databricks accepts it; anything else (another namespace's task run too) is no run."""
    try:
        payload, run = await task_run_answer(request, namespace, run_id, params)
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
