"""Readiness checks, each registered by the cleanup context that opens what it checks.

svcs' idea: a resource and its health ping are registered together, so whoever adds a
resource to the composition root adds its line to /readyz in the same place, and /readyz is
one loop over what is registered. A check answers ``(ok, detail)``; the detail is shown to
whoever probes /readyz, so it must say what is wrong without naming a secret.

Imports nothing of lakegate, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping

Check = Callable[[], Awaitable[tuple[bool, str]]]
ReadinessReport = Mapping[str, tuple[bool, str]]
# What /readyz calls: the registry below, or any callable answering a whole report (tests).
Readiness = Callable[[], Awaitable[ReadinessReport]]


class ReadinessChecks:
    """Named checks in the order they were registered; calling it runs them one by one."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def add(self, name: str, check: Check) -> None:
        """Report ``check`` as ``name`` for the life of the application."""
        if name in self._checks:
            raise ValueError(f"a readiness check named {name!r} is already registered")
        self._checks[name] = check

    @contextlib.contextmanager
    def registered(self, name: str, check: Check) -> Iterator[None]:
        """Report ``check`` as ``name`` for as long as the block runs (its resource is open)."""
        self.add(name, check)
        try:
            yield
        finally:
            self._checks.pop(name, None)

    async def __call__(self) -> ReadinessReport:
        # A check that raises fails the whole probe; /readyz answers that as not ready.
        return {name: await check() for name, check in list(self._checks.items())}


def workspaces_check(count: int) -> Check:
    """Ready only with a workspace to send runs to."""

    async def check() -> tuple[bool, str]:
        return count > 0, f"{count} workspace(s) on the allow-list"

    return check


def task_check(task: asyncio.Task[None]) -> Check:
    """Ready while a background task runs; a stopped poller cannot follow runs."""

    async def check() -> tuple[bool, str]:
        running = not task.done()
        return running, "running" if running else "stopped"

    return check
