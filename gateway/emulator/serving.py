"""What both emulators share: an aiohttp app served on a loopback port, started and stopped."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web

from gateway.serving import GatewayRunner, Listener, start_site

# A hung client (a fault holding a request) must not keep a test waiting at teardown.
SHUTDOWN_TIMEOUT = 2.0


class LoopbackServer:
    """Serves ``app`` on ``host`` and ``port`` (0 picks a free one) until stopped.

    Subclasses build the app and may override ``_on_started`` (log, learn their own URL).
    """

    def __init__(self, app: web.Application, *, host: str, port: int, name: str) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._name = name
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError(f"the {self._name} is not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        # The gateway's runner, so an unparsable request is answered without an echo here too.
        runner = GatewayRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            self._port = await start_site(runner, Listener(self.app, self._host, self._port))
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._on_started()

    def _on_started(self) -> None:
        """Called once the port is bound."""

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            self._on_stopped()

    def _on_stopped(self) -> None:
        """Called once the server is stopped."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
