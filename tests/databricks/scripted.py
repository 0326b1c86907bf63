"""A scripted HTTP server on a loopback port: each request gets the next reply in its script.

The unit tests of the Jobs client and the token endpoint helpers run against it, so aiohttp's
real client meets a real socket (status codes, dropped connections, truncated bodies, hangs),
while each test states exactly what the server answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

Action = Literal["reply", "drop", "truncate", "hang"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a response, a dropped connection, a cut body, or a long silence."""

    status: int = 200
    json: Any = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    action: Action = "reply"
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """A request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


class ScriptedServer:
    """Serves scripted replies per (method, path); an unscripted request gets a 418."""

    def __init__(self) -> None:
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._always: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.active = 0
        self.peak = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app)

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies, used once each in order."""
        self._scripts[(method, path)].extend(replies)

    def always(self, method: str, path: str, reply: Reply) -> None:
        """The reply once the queue for this route is empty."""
        self._always[(method, path)] = reply

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        key = (request.method, request.path)
        queue = self._scripts[key]
        reply = queue.popleft() if queue else self._always.get(key)
        if reply is None:
            return web.json_response({"error": f"unscripted {key}"}, status=418)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return await self._answer(request, reply)
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.delay or reply.action == "hang":
            await asyncio.sleep(reply.delay or 3600)
        if reply.action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if reply.action == "truncate":
            resp = web.StreamResponse(status=reply.status, headers=reply.headers)
            resp.content_length = 1000
            await resp.prepare(request)
            await resp.write(b'{"run_id": ')
            assert request.transport is not None
            request.transport.close()
            return resp
        if reply.json is not None:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        return web.Response(text=reply.text, status=reply.status, headers=reply.headers)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A scripted server for one test, closed after it."""
    scripted = ScriptedServer()
    await scripted.start()
    yield scripted
    await scripted.close()
