"""The HTTP server ``lakegate serve`` runs: aiohttp's, with its parse errors kept quiet.

aiohttp answers a request whose head it cannot parse (an obs-folded header continuation, a
header over the size limit, a bad character) before any middleware runs, with a text body
quoting the offending bytes, and logs the same bytes in a traceback: an ``Authorization``
header split by obs-fold, or an over-long one, would be echoed to the caller and the logs.
``GatewayRunner`` serves with a request handler that answers such a request with a
problem+json naming only the kind of error, and logs only that kind.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.logs import get_logger

log = get_logger(__name__)

_PROBLEM_TYPE = "https://lakegate.dev/problems/unparsable-request"


def _parse_problem(exc: HttpProcessingError) -> str:
    """What was wrong with the request head, never quoting it."""
    if isinstance(exc, LineTooLong):
        return "a request line or header is longer than the gateway accepts"
    return (
        "the request head is malformed (for example an obs-folded header continuation, "
        "or a character not allowed in a header)"
    )


class _QuietRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        detail = _parse_problem(exc)
        log.info("http_request_unparsable", error=type(exc).__name__, status=status)
        body = {
            "type": _PROBLEM_TYPE,
            "title": "Bad Request",
            "status": status,
            "detail": f"{detail}; fix the request and send it again.",
        }
        resp = web.Response(
            status=status, text=json.dumps(body), content_type="application/problem+json"
        )
        resp.force_close()
        return resp


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer unparsable requests without echoing them."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object, same state: only the factory of its connections' handlers changes.
        server.__class__ = _QuietServer
        return server


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    started: Callable[[], None],
    **handler_args: Any,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully: in-flight requests
    finish (within ``shutdown_timeout``) and every cleanup_ctx closes what it opened."""
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=shutdown_timeout, **handler_args)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        started()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
