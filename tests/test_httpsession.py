"""Outbound sessions keep no cookie: what one tenant's upstream set never travels with another's.

The server here sets a cookie on one path and echoes the Cookie header it gets on another.
It is reached as ``localhost``, since aiohttp's jar ignores cookies from a bare IP address,
so that a default session demonstrably replays the cookie and the test can fail.
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app.resources import http_ctx
from gateway.appkeys import DATABRICKS_HTTP
from gateway.httpsession import shared_session
from gateway.settings import Settings

PACKAGE = Path(__file__).resolve().parents[1] / "gateway"
# The only sessions not shared between namespaces: the CLI's, for the one person running it,
# and the emulators', which are test equipment.
OWN_SESSIONS = {"httpsession.py", "cli/client.py"}


async def _set(_request: web.Request) -> web.Response:
    response = web.json_response({})
    response.set_cookie("affinity", "tenant-a-node-3")
    return response


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"cookie": request.headers.get("Cookie")})


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/set", _set)
    app.router.add_get("/echo", _echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://localhost:{server.port}"
    await server.close()


async def _cookie_sent_after_one_was_set(session: aiohttp.ClientSession, url: str) -> str | None:
    async with session.get(f"{url}/set") as resp:
        assert resp.status == 200
    async with session.get(f"{url}/echo") as resp:
        cookie: str | None = (await resp.json())["cookie"]
    return cookie


async def test_a_default_session_would_replay_the_cookie(upstream: str) -> None:
    """The control: aiohttp's own jar sends the cookie back with the next request."""
    async with aiohttp.ClientSession() as session:
        assert await _cookie_sent_after_one_was_set(session, upstream) == (
            "affinity=tenant-a-node-3"
        )


async def test_a_shared_session_sends_no_cookie_it_was_given(upstream: str) -> None:
    """A cookie an upstream set is neither kept nor sent with the next request."""
    async with shared_session(user_agent="lakegate/test", trust_env=False) as session:
        assert await _cookie_sent_after_one_was_set(session, upstream) is None


async def test_the_databricks_session_keeps_no_cookie(upstream: str) -> None:
    """The session every namespace's Databricks and token calls share is such a session."""
    app = web.Application()
    ctx = http_ctx(Settings())(app)
    await anext(ctx)
    try:
        assert await _cookie_sent_after_one_was_set(app[DATABRICKS_HTTP], upstream) is None
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(ctx)


def _session_constructions() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if "emulator" in relative.parts or str(relative) in OWN_SESSIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("ClientSession"):
                found.append(f"{relative}:{node.lineno}")
    return found


def test_every_shared_session_is_opened_by_shared_session() -> None:
    """No module outside httpsession.py (the CLI and the emulators aside) opens a session."""
    assert _session_constructions() == []
