"""The facade's error middleware: every refusal under /api/ answered in Databricks' shape.

Databricks clients branch on ``error_code`` and retry on 429/503 with ``Retry-After``; they
cannot read problem+json. The sub-application runs this middleware outermost of its own, so
the refusals of its body limit and caller middleware, the 404 of an unknown route and the 405
of a wrong method get the same shape as a handler's errors.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.compat.errors import ErrorAnswer, error_answer
from gateway.api.problems import log_unexpected
from gateway.appkeys import PROBLEM, REQUEST_ID
from gateway.errors import LakegateError, PayloadTooLarge
from gateway.logs import get_logger

__all__ = ["API_ROOT", "databricks_errors"]

API_ROOT = "/api/"
_UNEXPECTED = (
    "The gateway failed while handling this request; report the request id to the operators."
)

log = get_logger(__name__)


def respond(request: web.Request, answer: ErrorAnswer) -> web.Response:
    # The access log names what went wrong without the body, as it does for problems.
    request[PROBLEM] = answer.error_code.lower().replace("_", "-")
    return web.json_response(
        answer.body(request.get(REQUEST_ID, "")), status=answer.status, headers=answer.headers()
    )


def _http_answer(request: web.Request, exc: web.HTTPException) -> ErrorAnswer:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_answer(PayloadTooLarge(exc.text or exc.reason))
    if isinstance(exc, web.HTTPNotFound | web.HTTPMethodNotAllowed):
        # Databricks routes by method and path together: either miss is its 404, naming the
        # path without the /api prefix ('POST /2.1/jobs/runs/nope').
        shown = request.path.removeprefix("/api")[:200]
        return ErrorAnswer(
            404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {shown}'"
        )
    return ErrorAnswer(exc.status, "INVALID_PARAMETER_VALUE", exc.reason)


@web.middleware
async def databricks_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error under /api/ in Databricks' shape."""
    if not request.path.startswith(API_ROOT):
        # The bare prefix '/api' reaches the sub-application too; it is not the facade's, and
        # the root application answers it as it answers any unknown path.
        return await handler(request)
    try:
        return await handler(request)
    except LakegateError as exc:
        answer = error_answer(exc)
        if answer.status >= 500:
            log.warning(
                "request_failed", error=type(exc).__name__, status=answer.status, detail=exc.message
            )
        return respond(request, answer)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return respond(request, _http_answer(request, exc))
    except Exception as exc:
        await log_unexpected("unhandled_error", exc)
        return respond(request, ErrorAnswer(500, "INTERNAL_ERROR", _UNEXPECTED))
