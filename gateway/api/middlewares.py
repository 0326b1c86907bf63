"""Request context: request id, log context, the access log, HTTP metrics, the body limit.

``request_context`` runs outermost, so every response, error or not, carries X-Request-Id,
is counted and is logged once. Neither headers nor bodies are logged: they may hold tokens.

A sub-application's request passes through its parent's middlewares before its own. The
route guards (the body limit, the caller middleware) are therefore registered on each
application that serves routes, inside that application's error middleware, and
``owner_only`` makes each run only in the application that serves the route: once per
request, and shaped by the right error middleware.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.appkeys import CALLER, METRICS, PROBLEM, REQUEST_ID, SETTINGS
from gateway.errors import PayloadTooLarge
from gateway.logs import bound, get_logger
from gateway.settings import NAMESPACE_RE

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")
# Any other method is counted as OTHER: a caller must not be able to mint label values.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# nginx's convention for "the client went away before the answer".
_CLIENT_CLOSED = 499

log = get_logger("gateway.api.access")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id_for(request: web.Request) -> str:
    """The caller's X-Request-Id when it is safe to log and echo, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.match(given) else fresh_request_id()


def fresh_request_id() -> str:
    """32 random hex digits, the shape of uuid4().hex. An id names a request in logs; it is
    not a secret, so it needs no system randomness: os.urandom gives up the GIL for its
    system call, and under load took it back only after the ledger's thread let go (80 µs
    on a contended core, against 0.4 µs here)."""
    return f"{random.getrandbits(128):032x}"


def route_template(request: web.Request) -> str:
    """The matched route's template; unmatched paths share one label to bound cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _log_context(request: web.Request, request_id: str) -> dict[str, Any]:
    context: dict[str, Any] = {"request_id": request_id}
    namespace = request.match_info.get("namespace")
    # Only a valid name is bound: anything else is caller noise of any length.
    if namespace is not None and NAMESPACE_RE.match(namespace):
        context["namespace"] = namespace
    return context


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_for(request)
    request[REQUEST_ID] = request_id
    route = route_template(request)
    method = request.method if request.method in _KNOWN_METHODS else "OTHER"
    started = time.perf_counter()
    # problem_middleware answers every error, so 500 here means it failed itself.
    status = 500
    with bound(**_log_context(request, request_id)):
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as exc:
            # Only non-errors (redirects) get this far; they still carry the request id.
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            status = _CLIENT_CLOSED
            raise
        finally:
            elapsed = time.perf_counter() - started
            request.config_dict[METRICS].observe_http(method, route, status, elapsed)
            event: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            }
            if PROBLEM in request:
                event["problem"] = request[PROBLEM]
            if CALLER in request:
                event["caller"] = request[CALLER].subject
            # Kubelet probes and Prometheus scrapes every few seconds would drown the log;
            # their successes are counted in the metrics and logged only at debug.
            if route in _QUIET_ROUTES and status < 400:
                log.debug("http_request", **event)
            else:
                log.info("http_request", **event)


def body_limit(max_bytes: int) -> Middleware:
    """Refuse a declared Content-Length over the limit before a byte of the body is read."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_bytes:
            raise PayloadTooLarge(
                f"The request body is {length} bytes; this gateway accepts at most {max_bytes}."
            )
        return await handler(request)

    return limit


async def read_body(request: web.Request) -> bytes:
    """The request body, at most ``server.max_body_bytes`` of it; ``PayloadTooLarge`` beyond."""
    # aiohttp stops reading at the application's client_max_size; this catches a composition
    # root that set that higher than the configured limit.
    limit = request.config_dict[SETTINGS].server.max_body_bytes
    body = await request.read()
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return body


def owner_only(middleware: Middleware) -> Middleware:
    """``middleware``, run only by the application that serves the request's route."""

    @web.middleware
    async def owned(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Within an application's middlewares request.app is that application; the last of
        # match_info.apps is the one whose route (or whose 404) answers.
        if request.match_info.apps[-1] is not request.app:
            return await handler(request)
        return await middleware(request, handler)

    return owned
