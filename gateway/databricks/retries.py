"""Declared retry policies for Databricks calls: the Jobs API and the OAuth token endpoint.

One logical call may take several attempts, all inside ``RetryPolicy.deadline``:

- a refused token (``DatabricksAuthError``): the attempt invalidates the token that failed;
  the policy retries at once, ONE time, with a fresh token. A second refusal is final.
- 429 and 503: wait at least Retry-After (plus jitter, so a crowd told "1 s" does not return
  in step), or the jittered backoff if that is longer.
- other 5xx, timeouts, dropped connections (the client turns them into
  ``DatabricksUnavailable``): jittered exponential backoff.
- anything else (400, 403 PERMISSION_DENIED, 404): fail at once with Databricks' message.

runs/submit is retried like the rest only because it always carries an idempotency_token.
A retry that would sleep past the deadline is not made: the last error is raised as it was.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_before_delay,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from gateway.errors import DatabricksAuthError, DatabricksError, TokenEndpointError
from gateway.logs import get_logger
from gateway.settings import DatabricksSettings

log = get_logger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
RetryAfterOf = Callable[[BaseException], float | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long one logical call may keep trying, and how fast its backoff grows (seconds)."""

    deadline: float = 60.0
    initial: float = 0.5
    maximum: float = 10.0
    # Injected so tests can observe the waits without sleeping through them.
    sleep: Sleep = field(default=asyncio.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.deadline <= 0 or self.initial <= 0 or self.maximum < self.initial:
            raise ValueError("RetryPolicy needs deadline > 0 and 0 < initial <= maximum")

    @classmethod
    def from_settings(cls, settings: DatabricksSettings) -> RetryPolicy:
        return cls(
            deadline=settings.retry_deadline_seconds,
            initial=settings.retry_initial_seconds,
            maximum=max(settings.retry_max_seconds, settings.retry_initial_seconds),
        )

    async def run_jobs(self, endpoint: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, tried again as the policy says for one Jobs API call.

        The first try runs before any retrying controller exists: nearly every call succeeds
        at once, and building one (and going through it) cost more than the rest of the
        call's bookkeeping. A first failure is handed to a controller as its first attempt,
        with the time it took already spent from the deadline, so the retries that follow,
        their waits and their log lines are what they would have been.
        """
        started = time.monotonic()
        try:
            return await attempt()
        except Exception as exc:  # the controller decides what is retried, as for later tries
            first: Exception | None = exc

        async def again() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return await attempt()

        spent = time.monotonic() - started
        retrying = self._retrying(
            _JobsDecision(), "databricks_call_retrying", endpoint, retry_after_of, spent=spent
        )
        result: T = await retrying(again)
        return result

    def token_endpoint(self, url: str, retry_after: RetryAfterOf) -> AsyncRetrying:
        """A retrying controller for one token request; ``retry_after`` reads the wait hint."""
        return self._retrying(_token_decision, "token_endpoint_retrying", url, retry_after)

    def _retrying(
        self,
        decide: Callable[[BaseException], bool],
        event: str,
        target: str,
        retry_after: RetryAfterOf,
        *,
        spent: float = 0.0,
    ) -> AsyncRetrying:
        def retry(state: RetryCallState) -> bool:
            exc = _exception(state)
            return exc is not None and decide(exc)

        def before_sleep(state: RetryCallState) -> None:
            exc = _exception(state)
            log.warning(
                event,
                endpoint=target,
                attempt=state.attempt_number,
                wait_seconds=round(state.upcoming_sleep, 3),
                error=type(exc).__name__,
                http_status=getattr(exc, "http_status", None),
                error_code=getattr(exc, "error_code", None),
                message=str(exc),
            )

        return AsyncRetrying(
            sleep=self.sleep,
            stop=stop_before_delay(max(0.0, self.deadline - spent)),
            wait=WaitRetryAfterFloor(
                wait_exponential(multiplier=self.initial, max=self.maximum)
                + wait_random(0, self.initial),
                retry_after,
                jitter=self.initial,
            ),
            retry=retry,
            before_sleep=before_sleep,
            reraise=True,
        )


# --- decisions (pure) -----------------------------------------------------------------------


def should_retry(exc: BaseException, *, auth_failures: int) -> bool:
    """Whether a Jobs call that failed with ``exc`` is tried again.

    ``auth_failures`` counts the refused tokens of this call so far, this one included.
    """
    if isinstance(exc, DatabricksAuthError):
        return auth_failures <= 1
    return isinstance(exc, DatabricksError) and exc.transient


def retry_wait(
    exc: BaseException, backoff: float, retry_after: float | None, *, jitter: float
) -> float:
    """Seconds to sleep before the next attempt: Retry-After is a floor under the backoff."""
    if isinstance(exc, DatabricksAuthError):
        # A fresh token is the cure; waiting would not help it.
        return 0.0
    if retry_after is None:
        return backoff
    return max(backoff, retry_after + jitter)


def retry_after_of(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value >= 0 else None


class WaitRetryAfterFloor(wait_base):
    """A tenacity wait: the backoff, raised to the error's Retry-After (plus jitter)."""

    def __init__(self, backoff: wait_base, retry_after: RetryAfterOf, *, jitter: float) -> None:
        self.backoff = backoff
        self.retry_after = retry_after
        self.jitter = jitter

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = float(self.backoff(retry_state))
        exc = _exception(retry_state)
        if exc is None:
            return backoff
        # Jitter is not for security; it spreads out callers told the same Retry-After.
        spread = random.uniform(0, self.jitter)  # noqa: S311
        return retry_wait(exc, backoff, self.retry_after(exc), jitter=spread)


class _JobsDecision:
    """``should_retry`` with the auth-failure count of one call."""

    def __init__(self) -> None:
        self.auth_failures = 0

    def __call__(self, exc: BaseException) -> bool:
        if isinstance(exc, DatabricksAuthError):
            self.auth_failures += 1
        return should_retry(exc, auth_failures=self.auth_failures)


def _token_decision(exc: BaseException) -> bool:
    return isinstance(exc, TokenEndpointError) and exc.transient


def _exception(state: RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None
