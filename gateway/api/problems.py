"""The one place where errors become HTTP: RFC 9457 problem+json responses.

``problem_middleware`` turns a ``LakegateError`` (its ``status``, ``title``, message and
``fields()``), an aiohttp ``HTTPException`` (unknown route, wrong method, body too large) and
any other exception (500, logged with its traceback, never shown) into one response shape:
``{"type", "title", "status", "detail", "instance", "request_id", ...fields}``.
"""

from __future__ import annotations

import asyncio
import math
import re
import traceback
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import METRICS, PROBLEM, REQUEST_ID
from gateway.errors import LakegateError, PayloadTooLarge
from gateway.logs import get_logger, redact_text, redact_value

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://lakegate.dev/problems/"
# Fields an error may not overwrite: a careless fields() must not disguise the response.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "request_id"})
# Retry-After means something to clients only on these statuses (RFC 9110 section 10.2.3).
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_UNEXPECTED_DETAIL = (
    "The gateway failed while handling this request. "
    "Try again; if it keeps failing, report the request_id to the operators."
)

log = get_logger(__name__)


async def log_unexpected(event: str, exc: BaseException) -> None:
    """Log ``exc`` with its traceback, formatted in a worker thread: formatting reads the
    source files of every frame, which would block the loop."""
    rendered = await asyncio.to_thread(lambda: "".join(traceback.format_exception(exc)))
    # 'exception' is the key structlog's format_exc_info would have written.
    log.error(event, error=type(exc).__name__, exception=rendered)


def slug(name: str) -> str:
    """``QuotaExceeded`` -> ``quota-exceeded``; ``Method Not Allowed`` -> ``method-not-allowed``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name.strip())
    return re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")


def problem_response(
    request: web.Request,
    *,
    status: int,
    kind: str,
    title: str,
    detail: str,
    extra: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        # The last word before the wire: no held secret or credential shape leaves in it.
        "detail": redact_text(detail),
        "instance": request.path,
        "request_id": request.get(REQUEST_ID, ""),
    }
    for key, value in (extra or {}).items():
        if key not in _RESERVED:
            body[key] = redact_value(value)
    request[PROBLEM] = kind
    return web.json_response(
        body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


def _retry_after(exc: LakegateError) -> dict[str, str] | None:
    seconds = getattr(exc, "retry_after", None)
    if exc.status not in _RETRY_AFTER_STATUSES or not isinstance(seconds, int | float):
        return None
    # Whole seconds, rounded up: a client that waits exactly this long is not early.
    return {"Retry-After": str(max(0, math.ceil(seconds)))}


def _headers(exc: LakegateError) -> dict[str, str] | None:
    headers = _retry_after(exc) or {}
    if exc.status == 401:
        # RFC 9110: a 401 names the scheme the caller should use.
        headers["WWW-Authenticate"] = 'Bearer realm="lakegate"'
    return headers or None


def from_error(request: web.Request, exc: LakegateError) -> web.Response:
    return problem_response(
        request,
        status=exc.status,
        kind=slug(type(exc).__name__),
        title=exc.title,
        detail=exc.message,
        extra=exc.fields(),
        headers=_headers(exc),
    )


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPNotFound):
        return f"No route serves {request.path}; see /openapi.json for the routes."
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods)) or "none"
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    return exc.reason


def from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        # aiohttp's text names the limit it enforced ("Maximum request body size N exceeded.").
        return from_error(request, PayloadTooLarge(exc.text or exc.reason))
    # Allow (405) and similar headers tell the client how to fix its request; keep them.
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return problem_response(
        request,
        status=exc.status,
        kind=slug(exc.reason),
        title=exc.reason,
        detail=_http_detail(request, exc),
        headers=headers or None,
    )


def _count_refusal(request: web.Request, exc: LakegateError) -> None:
    # Only a namespace the gateway itself put on the error: the path's is anyone's to invent.
    namespace = exc.fields().get("namespace")
    metrics = request.config_dict.get(METRICS)
    if isinstance(namespace, str) and exc.status < 500 and metrics is not None:
        metrics.observe_refusal(namespace, slug(type(exc).__name__))


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LakegateError as exc:
        if exc.status >= 500:
            log.warning(
                "request_failed", error=type(exc).__name__, status=exc.status, detail=exc.message
            )
        _count_refusal(request, exc)
        return from_error(request, exc)
    except web.HTTPException as exc:
        # Redirects and other non-errors raised as exceptions are answers, not problems.
        if exc.status < 400:
            raise
        return from_http_exception(request, exc)
    except Exception as exc:
        await log_unexpected("unhandled_error", exc)
        return problem_response(
            request,
            status=500,
            kind="internal-error",
            title="Internal error",
            detail=_UNEXPECTED_DETAIL,
        )
