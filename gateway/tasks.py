"""How a background task is stopped: cancelled, then awaited, so it never outlives its owner
and its end (cancelled, as expected) is not reported as an error."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel each task, then wait for each to end; their cancellation is not re-raised."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
