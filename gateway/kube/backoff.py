"""Jittered exponential backoff for the informer's long-running list-and-watch loop.

The loop is a supervisor that runs for the life of the process, not one call with a deadline,
so a tenacity policy (which gives up) does not fit; it only needs the next delay. Jitter keeps
replicas that lost the API server together from reconnecting together.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * multiplier**attempt`` capped at ``maximum``, then jittered downwards.

    With ``jitter`` 0.5 the delay lies in [half, all] of the capped value: never zero, so a
    failing server is not hammered, and spread, so clients do not move in step.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must lie in [0, 1]")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        # Cap the exponent: multiplier**attempt overflows a float long before attempts run out.
        exponent = min(max(attempt, 0), 64)
        capped = min(self.maximum, self.initial * self.multiplier**exponent)
        return capped * (1.0 - self.jitter * rand())
