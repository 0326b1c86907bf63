"""The test tree's one fake clock and one sleep recorder.

``Clock`` is time that moves only when a test says so: called, it gives seconds as a float
(for code that takes a monotonic clock); ``utc()`` gives the same instant as an aware
datetime (for code that takes a wall clock, such as the run ledger). ``Sleeps`` stands in
for ``asyncio.sleep``: it records each delay and returns at once.
"""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """Time that moves only when a test says so; ``now`` is seconds since the epoch."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def utc(self) -> datetime:
        """``now`` as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.now, UTC)


class Sleeps:
    """A sleep that records what it was asked for and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
