"""The /v1 run handlers: parse, call the RunService, shape the answer.

Handlers hold no logic of their own beyond HTTP: validation is in ``schemas``, the wire shape
in ``views``, errors become problem+json in ``problems``. Each first asks ``authorize``, before
even the namespace's name is checked, so an unknown caller learns nothing, not even that.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.callers import authorize
from gateway.api.jsonbody import json_response
from gateway.api.middlewares import read_body
from gateway.api.schemas import (
    check_list_parameters,
    parse_cursor,
    parse_idempotency_key,
    parse_limit,
    parse_namespace,
    parse_run_id,
    parse_states,
    parse_submit,
)
from gateway.api.views import run_location, run_view
from gateway.appkeys import SERVICE
from gateway.model import RunState

# Accepted by the ledger but not yet known to Databricks: the caller should poll (202).
_NOT_YET_SUBMITTED = frozenset({RunState.QUEUED, RunState.SUBMITTING})


async def submit_run(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.submit")
    namespace = parse_namespace(request.match_info["namespace"])
    key = parse_idempotency_key(request.headers.getall("Idempotency-Key", []))
    submission = parse_submit(await read_body(request))
    outcome = await request.config_dict[SERVICE].submit(namespace, submission, idempotency_key=key)
    run = outcome.run
    if not outcome.created:
        status = 200
    elif run.state in _NOT_YET_SUBMITTED:
        status = 202
    else:
        status = 201
    return json_response(
        run_view(run),
        status=status,
        headers={"Location": run_location(run.namespace, run.id)},
    )


async def get_run(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.get")
    namespace = parse_namespace(request.match_info["namespace"])
    run_id = parse_run_id(request.match_info["run_id"])
    run = await request.config_dict[SERVICE].get(namespace, run_id)
    return json_response(run_view(run, history=True))


async def list_runs(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.list")
    namespace = parse_namespace(request.match_info["namespace"])
    query = request.query
    check_list_parameters(set(query.keys()))
    page = await request.config_dict[SERVICE].list(
        namespace,
        states=parse_states(query.getall("state", [])),
        limit=parse_limit(query.getall("limit", [])),
        cursor=parse_cursor(query.getall("cursor", [])),
    )
    return json_response(
        {"runs": [run_view(run) for run in page.runs], "next_cursor": page.next_cursor}
    )


async def cancel_run(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.cancel")
    namespace = parse_namespace(request.match_info["namespace"])
    run_id = parse_run_id(request.match_info["run_id"])
    run = await request.config_dict[SERVICE].cancel(namespace, run_id)
    return json_response(run_view(run), status=202)
