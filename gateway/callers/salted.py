"""How many salted API-key checks run at once, and how many may wait for a turn.

A salted check (scrypt, PBKDF2) is deliberately slow, and every key nobody has presented
before costs one. ``CheckSlots`` lets ``workers`` checks run at a time and ``queue`` more
wait; a check beyond that is refused at once with ``ChecksBusy`` (503 with Retry-After),
rather than piling up waiters, each holding a request and its socket, without bound. The
key may well be valid, so this is an outage answer, never a 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable

from gateway.callers.types import CredentialChecksBusy

# Until a check has been timed, a turn is assumed to take this long.
_FIRST_GUESS_SECONDS = 1.0
# How much each new timing moves the running mean.
_WEIGHT = 0.2


class ChecksBusy(CredentialChecksBusy):
    """Every salted-check slot and queue place is taken."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("API keys", retry_after)


def wait_estimate(mean_seconds: float, admitted: int, workers: int) -> float:
    """Whole seconds until a turn is likely free: everyone admitted, ``workers`` at a time.

    Pure. At least one second, so a client never hears ``Retry-After: 0`` and spins.
    """
    rounds = math.ceil(max(admitted, 1) / max(workers, 1))
    return float(max(1, math.ceil(mean_seconds * rounds)))


class CheckSlots:
    """At most ``workers`` holders at a time, at most ``queue`` more waiting for a turn."""

    def __init__(
        self, workers: int, queue: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("at least one worker, and a queue of zero or more")
        self.workers = workers
        self.queue = queue
        self._semaphore = asyncio.Semaphore(workers)
        self._clock = clock
        # Running and waiting together; only ever changed on the event loop.
        self._admitted = 0
        self._mean = _FIRST_GUESS_SECONDS

    @property
    def admitted(self) -> int:
        return self._admitted

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the ``workers`` slots; raises ``ChecksBusy`` when the queue is full."""
        if self._admitted >= self.workers + self.queue:
            raise ChecksBusy(wait_estimate(self._mean, self._admitted, self.workers))
        self._admitted += 1
        try:
            async with self._semaphore:
                started = self._clock()
                yield
                took = self._clock() - started
                self._mean += _WEIGHT * (took - self._mean)
        finally:
            self._admitted -= 1
