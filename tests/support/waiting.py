"""Waiting in a test for something the loop will make true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``predicate()`` holds, checked every 20 ms; TimeoutError after ``within``."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)
