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
import os
import re
import signal
import ssl
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import heap
from gateway.databricks_errors import error_body
from gateway.errors import ConfigError
from gateway.logs import get_logger

log = get_logger(__name__)

# Idle keep-alive connections close after this (aiohttp's default is an hour).
KEEPALIVE_SECONDS = 75.0
# A new connection's first request head must be complete within this.
HEAD_TIMEOUT_SECONDS = 10.0
# aiohttp's own bounds on one request head, stated so they are the gateway's.
HEAD_LIMITS: dict[str, int] = {"max_line_size": 8190, "max_field_size": 8190, "max_headers": 100}

_PROBLEM_TYPE = "https://lakegate.dev/problems/unparsable-request"
# A head that starts like a call of the Databricks-compatible API (``METHOD /api/``) is
# answered in Databricks' error shape, which is all its clients can read.
_COMPAT_HEAD = re.compile(rb"^[A-Z]{3,7} /api/")


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
    # The first bytes of the head being read: only whether they name the facade is read.
    _head_start = b""
    # Whether the next bytes begin a new head: on a keep-alive connection, once the previous
    # request (head and body) has been read. Pipelined requests are not told apart.
    _await_head = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = asyncio.get_running_loop().call_later(
            self.head_timeout, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        if self._await_head and data:
            self._head_start, self._await_head = b"", False
        if len(self._head_start) < 16:
            self._head_start += data[: 16 - len(self._head_start)]
        requests = self._request_count
        super().data_received(data)
        if self._request_count > requests and self._messages:
            # The head just parsed ends where its body does (at once when it has none).
            self._messages[-1][1].on_eof(self._next_head)
        if self._head_timer is not None and self._messages:
            # A head was parsed (or refused): from here aiohttp's own timers apply.
            self._head_timer.cancel()
            self._head_timer = None

    def _next_head(self) -> None:
        self._await_head = True

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
        # A fresh id (the caller's X-Request-Id is in the head that did not parse) joins the
        # answer to the log line; the path is not known, so ``instance`` is empty.
        request_id = uuid.uuid4().hex
        log.info(
            "http_request_unparsable",
            error=type(exc).__name__,
            status=status,
            request_id=request_id,
        )
        text = f"{detail}; fix the request and send it again."
        if _COMPAT_HEAD.match(self._head_start):
            body, media = (
                error_body("INVALID_PARAMETER_VALUE", text, request_id),
                "application/json",
            )
        else:
            body = {
                "type": _PROBLEM_TYPE,
                "title": "Bad Request",
                "status": status,
                "detail": text,
                "instance": "",
                "request_id": request_id,
            }
            media = "application/problem+json"
        resp = web.Response(
            status=status,
            text=json.dumps(body),
            content_type=media,
            headers={"X-Request-Id": request_id},
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


@dataclass(frozen=True)
class Listener:
    """One socket ``serve`` opens: an application on a host and port, over TLS when given."""

    app: web.Application
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context from PEM files; a missing or unusable file is a ``ConfigError``
    naming the setting, so ``lakegate serve`` refuses to start rather than serve plain HTTP."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    problems = [
        f"server: {key}: {path} does not exist or is not a file"
        for key, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file))
        if not os.path.isfile(path)
    ]
    if problems:
        raise ConfigError(problems)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError, ValueError) as exc:
        # The reason is the ssl module's (a mismatched key, not PEM); never the key's bytes.
        raise ConfigError(
            [f"server: tls_cert_file/tls_key_file: cannot load {cert_file} with {key_file}: {exc}"]
        ) from exc
    return context


async def start_site(runner: web.BaseRunner, listener: Listener) -> int:
    """Open ``listener``'s socket on a set-up runner; the port it is bound to (0 picks one)."""
    site = web.TCPSite(runner, listener.host, listener.port, ssl_context=listener.ssl_context)
    await site.start()
    bound = [addr for addr in runner.addresses if isinstance(addr, tuple)]
    return int(bound[-1][1]) if bound else listener.port


async def serve(
    main: Listener,
    *,
    shutdown_timeout: float,
    started: Callable[[], None],
    also: Sequence[Listener] = (),
    **handler_args: Any,
) -> None:
    """Serve ``main`` (and every listener in ``also``, such as the metrics listener) until
    SIGINT or SIGTERM, then shut down gracefully: in-flight requests finish (within
    ``shutdown_timeout``) and every cleanup_ctx closes what it opened. The main application
    starts first, so the others serve what its start-up built."""
    runners: list[GatewayRunner] = []
    try:
        for listener in (main, *also):
            runner = GatewayRunner(
                listener.app, access_log=None, shutdown_timeout=shutdown_timeout, **handler_args
            )
            runners.append(runner)
            await runner.setup()
            await start_site(runner, listener)
        started()
        heap.settle()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        # The others first: they read what the main application's cleanup closes.
        for runner in reversed(runners):
            await runner.cleanup()


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the event loop ``server.event_loop`` names; None: asyncio's own."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, None], *, event_loop: str = "asyncio") -> None:
    """Run ``main`` to its end on the event loop ``server.event_loop`` names."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(main)
