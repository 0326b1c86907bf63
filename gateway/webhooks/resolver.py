"""The guard at connection time: an aiohttp resolver that refuses forbidden answers.

The webhook session's connector resolves every host through ``GuardedResolver``; it connects
only to the addresses this returns, all of which passed the guard, so a DNS answer that
changes after a URL was accepted (rebinding) cannot reach inside the network. Literal
addresses never reach a resolver: the dispatcher checks them with ``Guard.check_url`` before
every attempt.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.webhooks.guard import Guard, refusals


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and refuses the host if ANY address it gets is forbidden."""

    def __init__(self, guard: Guard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        refused = refusals(self._guard, (r["host"] for r in results))
        if refused:
            address, rule = refused[0]
            raise AddressRefused(host, address, rule)
        return results

    async def close(self) -> None:
        await self._inner.close()


class AddressRefused(OSError):
    """A host resolved to a forbidden address; aiohttp wraps it in ClientConnectorError."""

    def __init__(self, host: str, address: str, rule: str) -> None:
        super().__init__(f"'{host}' resolves to a {rule} address ({address})")
        self.rule = rule
