"""A webhook receiver on loopback that verifies each delivery with ``standardwebhooks``.

It answers from a script (a list of statuses, then 200), records every verified delivery in
order, and can redirect or stall; the tests read what it saw.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook


@dataclass
class Delivery:
    webhook_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    secret: str
    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 0.0
    # Fail (500) the first this many tries of every webhook-id, after the scripted statuses.
    fail_first: int = 0
    attempts: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    bad_signatures: int = 0
    redirected_hits: int = 0
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        self.attempts.append(request.headers["webhook-id"])
        if self.stall_seconds:
            await asyncio.sleep(self.stall_seconds)
        status = self.statuses.pop(0) if self.statuses else 200
        if self.attempts.count(request.headers["webhook-id"]) <= self.fail_first:
            status = 500
        if 300 <= status < 400:
            raise web.HTTPFound(location="/elsewhere")
        if 200 <= status < 300:
            self.deliveries.append(Delivery(request.headers["webhook-id"], json.loads(body)))
            self.arrived.set()
        return web.Response(status=status, headers=self.headers)

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirected_hits += 1
        return web.Response(status=200)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def running(receiver: Receiver, host: str = "127.0.0.1") -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/elsewhere", receiver.elsewhere)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
