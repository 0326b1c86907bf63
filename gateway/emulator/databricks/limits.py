"""The workspace's limits: request-rate token buckets per endpoint, and the 429 bodies.

The active-run limit itself lives in the run registry, which alone knows how many runs are
active; this module only words its refusal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from gateway.emulator.databricks.config import Endpoint, LimitsConfig, RateLimit

# What the Jobs service names each RPC in its token-bucket message (observed shape:
# "GetUserPermissionsRequest RPC token bucket limit has been exceeded.").
_RPC_NAMES: dict[str, str] = {
    "runs/submit": "SubmitRun",
    "runs/get": "GetRun",
    "runs/cancel": "CancelRun",
    "runs/list": "ListRuns",
    "runs/get-output": "GetRunOutput",
    "runs/cancel-all": "CancelAllRuns",
}


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second of the given clock."""

    def __init__(self, limit: RateLimit, now: Callable[[], float]) -> None:
        self._rate = limit.requests_per_second
        self._capacity = float(limit.capacity)
        self._now = now
        self._tokens = self._capacity
        self._stamp = now()

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one will be there."""
        now = self._now()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


@dataclass(frozen=True)
class Refusal:
    message: str
    retry_after: int


class RateLimiter:
    """One token bucket per configured endpoint, shared by every caller of the workspace."""

    def __init__(self, config: LimitsConfig, now: Callable[[], float]) -> None:
        self._buckets: dict[str, TokenBucket] = {
            endpoint: TokenBucket(limit, now) for endpoint, limit in config.rate_limits.items()
        }

    def check(self, endpoint: Endpoint | str) -> Refusal | None:
        bucket = self._buckets.get(endpoint)
        if bucket is None:
            return None
        wait = bucket.take()
        if wait == 0.0:
            return None
        # Retry-After is whole seconds on the wire; rounding up never invites a second 429.
        return Refusal(rate_message(endpoint), max(1, math.ceil(wait)))


def rate_message(endpoint: str) -> str:
    rpc = _RPC_NAMES.get(endpoint, "Jobs")
    return f"{rpc}Request RPC token bucket limit has been exceeded."


def active_runs_message(active: int, limit: int) -> str:
    """The real refusal at the active-run limit (dbdemos #244)."""
    return f"There are already {active} active runs (limit: {limit})."


def queue_full_message(queued: int, limit: int) -> str:
    # Unverified: what Databricks answers when its run queue is full.
    return f"There are already {queued} queued runs (limit: {limit})."
