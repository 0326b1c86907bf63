"""The HTTP server ``lakegate serve`` runs: aiohttp's, with its parse errors kept quiet.

aiohttp answers a request whose head it cannot parse (an obs-folded header continuation, a
header over the size limit, a bad character) before any middleware runs, with a text body
quoting the offending bytes, and logs the same bytes in a traceback: an ``Authorization``
header split by obs-fold, or an over-long one, would be echoed to the caller and the logs.
``GatewayRunner`` serves with a request handler that answers such a request with a
problem+json naming only the kind of error, and logs only that kind.

Slow clients cannot hold sockets: a connection must deliver a complete request head within
``head_timeout`` seconds of opening (aiohttp itself waits for it forever), and an idle
keep-alive connection is closed after ``KEEPALIVE_SECONDS``.
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

# Idle keep-alive connections close after this (aiohttp's default is an hour).
KEEPALIVE_SECONDS = 75.0
# A new connection's first request head must be complete within this.
HEAD_TIMEOUT_SECONDS = 10.0
# aiohttp's own bounds on one request head, stated so they are the gateway's.
HEAD_LIMITS: dict[str, int] = {"max_line_size": 8190, "max_field_size": 8190, "max_headers": 100}

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
    head_timeout = HEAD_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = asyncio.get_running_loop().call_later(
            self.head_timeout, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self._messages:
            # A head was parsed (or refused): from here aiohttp's own timers apply.
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        log.info("http_head_timeout", seconds=self.head_timeout)
        if self.transport is not None:
            self.transport.close()

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
    head_timeout = HEAD_TIMEOUT_SECONDS

    def __call__(self) -> RequestHandler:
        handler = _QuietRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.head_timeout = self.head_timeout
        return handler


class GatewayRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer unparsable requests without echoing them."""

    def __init__(
        self, app: web.Application, *, head_timeout: float = HEAD_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(app, **{"keepalive_timeout": KEEPALIVE_SECONDS, **HEAD_LIMITS, **kwargs})
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object, same state: only the factory of its connections' handlers changes.
        server.__class__ = _QuietServer
        assert isinstance(server, _QuietServer)
        server.head_timeout = self._head_timeout
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
    try:
        # Inside the try: a context that fails at start-up (no Kubernetes, a bad ledger) still
        # has those opened before it closed, so the process ends without unclosed warnings.
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        started()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
