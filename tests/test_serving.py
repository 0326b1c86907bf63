"""aiohttp's own parse errors (issue 9): a request head it cannot parse is answered 400
without echoing a header value, in the body or in the log."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import Overrides, create_app
from gateway.emulator.kubernetes import KubeApiServer
from gateway.serving import GatewayRunner
from tests.api.schema import assert_matches
from tests.e2e.test_no_secrets import production_logs
from tests.fixtures.gateway import StackFactory
from tests.test_app import settings_for

__all__ = ["production_logs"]

CANARY = "cnry" + "Q7xK2mZp9vL4wT8s"


HEAD_TIMEOUT = 0.5


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """A real create_app server, run as ``lakegate serve`` runs it, on a loopback port."""
    app = create_app(settings_for(tmp_path), Overrides(run_poller=False))
    runner = GatewayRunner(app, head_timeout=HEAD_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    yield int(server.sockets[0].getsockname()[1])
    await runner.cleanup()


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a fresh connection; everything the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    async with asyncio.timeout(5):
        answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize(
    ("head", "cause"),
    [
        # obs-fold (RFC 9112 section 5.2): the credential on a continuation line.
        (f"Authorization: Bearer\r\n {CANARY}\r\n", "malformed"),
        (f"Authorization: Bearer {CANARY}{'a' * 9000}\r\n", "longer than"),
        (f"X-Api-Key: {CANARY}\x01\r\n", "malformed"),
    ],
)
async def test_unparsable_heads_are_refused_without_echo(
    port: int, production_logs: io.StringIO, head: str, cause: str
) -> None:
    """The answer is a 400 problem+json naming the kind of error; neither it nor any log line
    holds the header's value."""
    raw = f"GET /v1/namespaces/a/runs HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode()
    answer = (await exchange(port, raw)).decode("latin-1")
    status_line, _, rest = answer.partition("\r\n")
    assert " 400 " in status_line, answer
    assert "application/problem+json" in rest
    body = json.loads(rest.partition("\r\n\r\n")[2])
    assert cause in body["detail"]
    # A problem as the OpenAPI document describes it, its new request id in the header too.
    assert_matches("Problem", body)
    assert f"X-Request-Id: {body['request_id']}" in rest
    logged = production_logs.getvalue()
    assert "http_request_unparsable" in logged
    assert CANARY not in answer
    assert CANARY not in logged


@pytest.mark.parametrize(
    "line",
    [
        f"GET /api/2.2/jobs/runs/list?page_token={'9' * 9000} HTTP/1.1",
        "GET /api/2.1/jobs/runs/get?run_id=1 HTTP/1.1",  # its header too long instead
    ],
)
async def test_an_unparsable_call_of_the_compatible_api_is_refused_in_databricks_shape(
    port: int, line: str
) -> None:
    """A Databricks client can read the refusal: application/json, error_code and details
    carrying the new request id, as the facade's other refusals."""
    raw = f"{line}\r\nHost: x\r\nX-Filler: {CANARY}{'a' * 9000}\r\n\r\n".encode()
    answer = (await exchange(port, raw)).decode("latin-1")
    status_line, _, rest = answer.partition("\r\n")
    assert " 400 " in status_line, answer
    assert "Content-Type: application/json" in rest
    body = json.loads(rest.partition("\r\n\r\n")[2])
    assert set(body) == {"error_code", "message", "details"}
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "longer than" in body["message"]
    assert f"X-Request-Id: {body['details'][0]['request_id']}" in rest
    assert CANARY not in answer


@pytest.mark.parametrize(
    ("first", "path", "media"),
    [
        # The connection's first request went elsewhere: the shape follows this request.
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "/api/2.2/jobs/runs/list", "json"),
        (b"GET /api/2.2/jobs/runs/list HTTP/1.1\r\nHost: x\r\n\r\n", "/v1/x", "problem+json"),
        # A body sent apart from its head is not taken for the next head.
        (
            b"POST /v1/namespaces/a/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
            "/api/2.1/jobs/runs/get",
            "json",
        ),
    ],
)
async def test_a_keep_alive_connection_answers_each_head_in_its_own_shape(
    port: int, first: bytes, path: str, media: str
) -> None:
    """The shape of a refusal is decided by the head that failed, not the connection's first."""
    too_long = f"GET {path}?page_token={'9' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(5):
        writer.write(first)
        if b"Content-Length: 2" in first:
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"{}")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(too_long)
        answer = (await reader.read()).decode("latin-1")
    writer.close()
    assert " 400 " in answer.partition("\r\n")[0], answer
    assert f"Content-Type: application/{media}" in answer


async def test_a_head_not_complete_in_time_loses_its_connection(
    port: int, production_logs: io.StringIO
) -> None:
    """A client trickling its request head (slowloris) is disconnected once the head timeout
    passes, while one whose head arrives in time is answered on the same kind of socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(HEAD_TIMEOUT * 10):
        assert await reader.read() == b""
    assert loop.time() - started >= HEAD_TIMEOUT * 0.8
    writer.close()
    assert "http_head_timeout" in production_logs.getvalue()

    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer


async def _served_ports(kind: str, stacks: StackFactory, kube_api: KubeApiServer) -> int:
    if kind == "gateway test stack":
        stack = await stacks(namespaces=1)
        return int(stack.url.rsplit(":", 1)[1])
    if kind == "databricks emulator":
        stack = await stacks(namespaces=1)
        return stack.emulator.port
    return kube_api.port


@pytest.mark.parametrize(
    "kind", ["gateway test stack", "databricks emulator", "kubernetes emulator"]
)
async def test_every_server_of_ours_refuses_unparsable_heads_without_echo(
    kind: str, gateway_stack_factory: StackFactory, kube_api: KubeApiServer
) -> None:
    """The test stacks and both emulators serve through the gateway's runner, as the demo
    does: an obs-folded credential gets the problem+json 400, never aiohttp's echo."""
    port = await _served_ports(kind, gateway_stack_factory, kube_api)
    raw = f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n {CANARY}\r\n\r\n"
    answer = (await exchange(port, raw.encode())).decode("latin-1")
    assert " 400 " in answer.partition("\r\n")[0], answer
    assert "application/problem+json" in answer
    assert CANARY not in answer
