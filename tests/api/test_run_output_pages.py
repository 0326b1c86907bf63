"""GET /v1/namespaces/{ns}/runs/{id}/output follows Jobs API 2.2's task pages with the one
page follower the facade uses (``gateway.databricks.pages``): every task of a long run, and
a Databricks that hands out the same page token forever is a bounded, clear 502."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.api.schema import assert_problem
from tests.api.test_run_output import wide_run_output
from tests.fixtures.gateway import StackFactory, namespace_name

NS = namespace_name(1)
STUCK_TOKEN = "same-page-again"
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def _python(key: str) -> dict[str, Any]:
    return {
        "task_key": key,
        "spark_python_task": {"python_file": "dbfs:/x.py"},
        "existing_cluster_id": "0101-000000-demo",
    }


class StuckPager:
    """A workspace in front of the emulator that, once ``stuck``, answers every runs/get
    with the same ``next_page_token``: what a broken upstream paging looks like. Counts the
    runs/get calls it saw, so the test can show the follower stopped."""

    def __init__(self) -> None:
        self.upstream = ""
        self.stuck = False
        self.run_gets = 0
        self.url = ""
        self._session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        query = request.query.copy()
        if self.stuck:
            # The emulator would refuse a token it never made: ask it for the first page.
            query.popall("page_token", None)
        async with self._session.request(
            request.method,
            self.upstream + request.path,
            params=query,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            content_type = resp.headers.get("Content-Type", "application/json")
            if request.path.endswith("/jobs/runs/get") and self.stuck and resp.status == 200:
                self.run_gets += 1
                page = await resp.json()
                page["next_page_token"] = STUCK_TOKEN
                return web.json_response(page)
            return web.Response(
                status=resp.status, body=body, headers={"Content-Type": content_type}
            )

    async def start(self) -> web.AppRunner:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return runner

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@pytest.fixture
async def stuck_stack(
    gateway_stack_factory: StackFactory,
) -> AsyncIterator[tuple[Any, StuckPager]]:
    """A gateway whose workspace host is the StuckPager in front of a fresh emulator."""
    pager = StuckPager()
    runner = await pager.start()
    try:
        stack = await gateway_stack_factory(namespaces=2, workspace={"host": pager.url})
        # The stack starts its own emulator, and the gateway calls its workspace lazily.
        pager.upstream = stack.emulator.url
        yield stack, pager
    finally:
        await runner.cleanup()
        await pager.close()


async def test_a_250_task_run_s_output_lists_every_task(
    gateway_stack_factory: StackFactory,
) -> None:
    """Three 2.2 pages (100, 100, 50) followed: all 250 tasks, in order, each with its
    own task run id and output."""
    stack = await gateway_stack_factory(namespaces=2)
    keys = [f"t{i:03d}" for i in range(250)]
    output = await wide_run_output(stack, keys)

    assert [task["task_key"] for task in output["tasks"]] == keys
    run_ids = [task["run_id"] for task in output["tasks"]]
    assert all(isinstance(run_id, int) for run_id in run_ids)
    assert len(set(run_ids)) == 250
    assert all("ran for" in task["logs"] for task in output["tasks"])


async def test_a_page_token_handed_out_forever_is_a_bounded_502(
    stuck_stack: tuple[Any, StuckPager],
) -> None:
    """Databricks answering the same next_page_token on every page: lakegate stops after
    the second time it sees it and answers a 502 problem naming Databricks, not a loop."""
    stack, pager = stuck_stack
    spec = {"run_name": "stuck", "tasks": [_python("a"), _python("b")]}
    async with stack.client() as client:
        run = (await client.submit(NS, spec)).run
        await client.wait(NS, run["id"], poll_interval=0.1)
    pager.stuck = True
    async with stack.session.get(f"{stack.url}/v1/namespaces/{NS}/runs/{run['id']}/output") as resp:
        body = await resp.json()

    assert resp.status == 502
    assert_problem(body, 502)
    assert body["upstream"] == "databricks"
    assert "page token" in body["detail"]
    # The first page, then the token once followed: the second time it is refused.
    assert pager.run_gets == 2
