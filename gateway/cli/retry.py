"""How ``LakegateClient`` retries a call: one declared tenacity policy that honours Retry-After.

Connection failures, 5xx and 429 are retried with jittered exponential waits, a server's
Retry-After taking the place of the wait (capped), until the attempts run out or the next
sleep would carry the call past ``max_delay`` since its first attempt.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from gateway.cli.errors import ApiError, GatewayClientError


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """Told to ``on_retry`` before each sleep between two attempts of one call."""

    method: str
    path: str
    attempt: int
    wait: float
    error: GatewayClientError


@dataclass(frozen=True, slots=True)
class ClientRetry:
    """How long a transiently failing call is retried; ``attempts=1`` turns retries off."""

    attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 10.0
    # Stop before a sleep would take the call past this many seconds since its first attempt.
    max_delay: float = 60.0
    max_retry_after: float = 30.0

    def retrying(self, before_sleep: Callable[[RetryCallState], None]) -> AsyncRetrying:
        """A fresh tenacity loop for one call; ``before_sleep`` hears of each retry."""
        backoff = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, ApiError) and error.retry_after is not None:
                return min(error.retry_after, self.max_retry_after)
            return backoff(state)

        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.max_delay),
            wait=wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )


def notice(method: str, path: str, state: RetryCallState) -> RetryNotice:
    """What is about to be retried, from tenacity's state before its sleep."""
    error = state.outcome.exception() if state.outcome else None
    assert isinstance(error, GatewayClientError)
    wait = state.next_action.sleep if state.next_action else 0.0
    return RetryNotice(method, path, state.attempt_number, wait, error)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, GatewayClientError) and exc.transient
