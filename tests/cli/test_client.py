"""``gateway.cli.client.LakegateClient`` on its own: sessions, answers, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.cli.client import LakegateClient
from gateway.cli.errors import ApiError, UnexpectedResponse
from gateway.cli.retry import ClientRetry
from tests.cli.conftest import SPEC
from tests.cli.fake_gateway import FakeGateway


async def test_problem_becomes_an_api_error(gateway: FakeGateway) -> None:
    """A problem+json answer raises ApiError with its members, and is not retried."""
    async with LakegateClient(gateway.url) as client:
        with pytest.raises(ApiError) as error:
            await client.get("team-a", 3)

    assert (error.value.status, error.value.title) == (404, "Run not found")
    assert error.value.request_id == "req-1"
    assert not error.value.transient
    assert len(gateway.requests) == 1


async def test_handed_session_is_left_open(gateway: FakeGateway) -> None:
    """A client given a session uses it and leaves closing it to its owner."""
    async with aiohttp.ClientSession() as session:
        async with LakegateClient(gateway.url, session=session) as client:
            await client.list_runs("team-a")
        assert not session.closed


async def test_wait_returns_the_terminal_run(gateway: FakeGateway) -> None:
    """wait() polls until a terminal state and returns that run."""
    async with LakegateClient(gateway.url) as client:
        submitted = await client.submit("team-a", SPEC, labels={"team": "data"})
        run = await client.wait("team-a", submitted.run["id"], poll_interval=0.01)

    assert run["state"] == "SUCCEEDED"
    assert run.get("labels") == {"team": "data"}


@pytest.fixture
async def not_lakegate() -> AsyncIterator[str]:
    """A web server that is not lakegate: HTML, 200 on /ok and 502 elsewhere, like a proxy."""

    async def page(request: web.Request) -> web.Response:
        status = 200 if request.path.endswith("/ok") else 502
        return web.Response(status=status, text="<html>nginx</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_html_success_is_an_unexpected_response(not_lakegate: str) -> None:
    """A 2xx answer that is not JSON raises UnexpectedResponse, naming the URL."""
    async with LakegateClient(not_lakegate) as client:
        with pytest.raises(UnexpectedResponse, match=not_lakegate):
            await client.get("team-a", "ok")


async def test_proxy_error_page_becomes_a_transient_api_error(not_lakegate: str) -> None:
    """A 502 HTML page from a proxy is an ApiError titled by its status, retried as transient."""
    policy = ClientRetry(attempts=2, initial_wait=0.01)
    async with LakegateClient(not_lakegate, retry=policy) as client:
        with pytest.raises(ApiError) as error:
            await client.get("team-a", 1)

    assert (error.value.status, error.value.title) == (502, "Bad Gateway")
    assert error.value.detail == "<html>nginx</html>"
    assert error.value.transient


def test_repr_leaves_the_token_out() -> None:
    """The token never shows in a repr, and so in no traceback or debugger."""
    client = LakegateClient("http://127.0.0.1:8080/", token="very-secret-token")

    assert "very-secret-token" not in repr(client)
    assert client.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host", "http://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    """The base URL must be http(s) with a host."""
    with pytest.raises(ValueError, match="http"):
        LakegateClient(url)
