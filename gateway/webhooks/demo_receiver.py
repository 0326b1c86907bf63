"""The demo's webhook receiver: a loopback server that verifies and prints each delivery.

``lakegate demo`` points team-a's default endpoint at it, so a newcomer sees a run's
``run.completed`` arrive, with its signature checked the way a receiver should check it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from gateway.webhooks.signing import verify


class DemoReceiver:
    """Serves POST /webhooks on 127.0.0.1; ``url`` once started."""

    def __init__(self, keys: tuple[bytes, ...], *, out: Callable[[str], None] = print) -> None:
        self._keys = keys
        self._out = out
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/webhooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhooks"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self._keys, request.headers, body, now=int(time.time())):
            self._out("webhook REFUSED: signature or timestamp does not verify")
            return web.Response(status=401)
        event = json.loads(body)
        data = event.get("data", {})
        self._out(
            f"webhook {request.headers['webhook-id']} {event.get('type')}: run {data.get('id')} "
            f"of {data.get('namespace')} is {data.get('state')} (signature verified)"
        )
        return web.Response(status=204)
