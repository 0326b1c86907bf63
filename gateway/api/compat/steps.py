"""The steps every facade handler shares: which namespace a request acts for, its parameters,
and what runs/get shows of a ledger run (runs/list shows the same, so an item is never older
than runs/get would be).

A run Databricks has is shown as Databricks answers it: to a 2.0/2.1 client with every page
of its arrays merged (``pages``), to a 2.2 client page by page, Databricks' tokens passed on.
An ended run's answer no longer changes, so one that fits a single page is kept for a while
(``ENDED_RUNS``, per process) and a page of ended runs costs no Databricks calls the second
time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from gateway.api.callers import authenticate, authorize, default_namespace
from gateway.api.compat.errors import CompatError
from gateway.api.compat.forwarded import (
    Origin,
    Proxies,
    forwarded_hops,
    public_origin,
    x_forwarded_hops,
)
from gateway.api.compat.requests import (
    NAMESPACE_HEADER,
    Query,
    get_parameters,
    parse_namespace,
)
from gateway.api.compat.wire import ledger_run, remote_run
from gateway.api.middlewares import read_body
from gateway.appkeys import CALLERS, ENDED_RUNS, REMOTE_RUNS, SETTINGS
from gateway.databricks.pages import fits_one_page, next_page_token, whole_run
from gateway.errors import DatabricksRunNotFound, LakegateError
from gateway.model import RunRecord
from gateway.singleflight import TtlCache

__all__ = [
    "answers_whole",
    "client_origin",
    "ended_runs_ctx",
    "namespace_for",
    "origin_of",
    "parameters_of",
    "query_of",
    "shown_run",
    "task_run_answer",
]

FORWARDED = "Forwarded"
X_FORWARDED_FOR = "X-Forwarded-For"
X_FORWARDED_HOST = "X-Forwarded-Host"
X_FORWARDED_PROTO = "X-Forwarded-Proto"
# The request's client origin, worked out once.
_ORIGIN = web.RequestKey("lakegate.compat.origin", Origin)

# An ended run's Databricks answer, reused this long; bounded, as a payload may hold 100 tasks
# (longer runs are not kept).
ENDED_RUN_SECONDS = 300.0
ENDED_RUN_ENTRIES = 500


async def namespace_for(request: web.Request, action: str) -> str:
    """The namespace the request acts for, once the caller is authorized for it.

    First ``X-Lakegate-Namespace``, then the namespace the Host names (for unchanged clients,
    under ``callers.namespace_host_pattern``; behind a proxy in ``server.trusted_proxies``
    the Host it forwards), then the caller's default. Either way the
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
        host = client_origin(request).host
        namespace = gate.namespace_from_host(host) if gate is not None else None
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


def client_origin(request: web.Request) -> Origin:
    """The scheme and Host this client called: the socket's, or behind a trusted proxy
    (``server.trusted_proxies``) what the proxy forwarded (``forwarded``)."""
    if _ORIGIN in request:
        return request[_ORIGIN]
    socket = Origin(request.scheme, request.host)
    settings = request.config_dict.get(SETTINGS)
    proxies = Proxies(settings.server.trusted_proxies if settings is not None else ())
    origin = socket
    if proxies:
        headers = request.headers
        if FORWARDED in headers:
            hops = forwarded_hops(headers.getall(FORWARDED))
        else:
            hops = x_forwarded_hops(
                headers.getall(X_FORWARDED_FOR, []),
                headers.getall(X_FORWARDED_HOST, []),
                headers.getall(X_FORWARDED_PROTO, []),
            )
        origin = public_origin(request.remote, socket, hops, proxies)
    request[_ORIGIN] = origin
    return origin


def origin_of(request: web.Request) -> str:
    """The gateway as this client reached it, for URLs it can follow back."""
    return client_origin(request).url


def query_of(request: web.Request) -> Query:
    query = request.query
    return {name: query.getall(name) for name in query}


async def parameters_of(request: web.Request) -> Query:
    """A GET's parameters: its query string, and a JSON body for what the query lacks."""
    return get_parameters(query_of(request), await read_body(request))


def answers_whole(request: web.Request) -> bool:
    """Whether the client's API version answers a run's arrays whole (2.0, 2.1), not in
    2.2's pages of 100."""
    return request.match_info.get("version") != "2.2"


async def shown_run(
    request: web.Request,
    run: RunRecord,
    params: Mapping[str, str] | None = None,
    *,
    whole: bool = True,
) -> dict[str, Any]:
    """runs/get's answer for a ledger run: Databricks' own once it has the run, else the
    ledger's account. ``whole``: every page of its arrays merged, as 2.0/2.1 answer."""
    if run.databricks_run_id is None:
        return ledger_run(run, origin_of(request))
    try:
        payload = await _remote(request, run, params or {}, whole=whole)
    except DatabricksRunNotFound:
        # Databricks deletes runs after 60 days; the ledger still knows how it went.
        return ledger_run(run, origin_of(request))
    except LakegateError as exc:
        if not (run.terminal and exc.transient):
            raise
        # The outcome of an ended run is the ledger's to tell; no need to fail the client
        # because Databricks is briefly away.
        return ledger_run(run, origin_of(request))
    return remote_run(payload, run)


async def _remote(
    request: web.Request, run: RunRecord, params: Mapping[str, str], *, whole: bool
) -> dict[str, Any]:
    remote = request.config_dict[REMOTE_RUNS]

    async def page(query: Mapping[str, str]) -> dict[str, Any]:
        return await remote.remote_run(run, params=query or None)

    async def answer() -> dict[str, Any]:
        return await (whole_run(page, params) if whole else page(params))

    cache = request.config_dict.get(ENDED_RUNS)
    if params or not run.terminal or cache is None:
        return await answer()

    async def load() -> tuple[dict[str, Any], float]:
        # Only a run that fits one page has the same answer at every version; a longer one
        # is not kept (its pages would be a version's own, and up to ten times the size).
        payload = await answer()
        return payload, ENDED_RUN_SECONDS if fits_one_page(payload) else 0.0

    cached = await cache.get(run.id, load)
    if whole and next_page_token(cached) is not None:
        # A 2.2 request's first page, loading when this one asked: follow the rest.
        return await whole_run(page, params, first=cached)
    return cached


async def task_run_answer(
    request: web.Request, namespace: str, run_id: int, params: Mapping[str, str]
) -> tuple[dict[str, Any], RunRecord]:
    """runs/get of a task run of one of the namespace's runs, and that run; whole under
    2.0/2.1 (a for-each task's iterations page like a run's tasks)."""
    remote = request.config_dict[REMOTE_RUNS]
    payload, run = await remote.remote_task_run(namespace, run_id, params=params or None)
    if not answers_whole(request) or next_page_token(payload) is None:
        return payload, run

    async def page(query: Mapping[str, str]) -> dict[str, Any]:
        more, _ = await remote.remote_task_run(namespace, run_id, params=query or None)
        return more

    return await whole_run(page, params, first=payload), run


async def ended_runs_ctx(app: web.Application) -> AsyncIterator[None]:
    """The facade's cache of ended runs' answers, opened and closed with the application."""
    cache: TtlCache[int, dict[str, Any]] = TtlCache(ENDED_RUN_ENTRIES, name="ended-runs")
    app[ENDED_RUNS] = cache
    try:
        yield
    finally:
        await cache.aclose()
