"""Retry decisions and the declared policies for Jobs calls and token requests."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from gateway.databricks.retries import RetryPolicy, retry_after_of, retry_wait, should_retry
from gateway.errors import (
    DatabricksAuthError,
    DatabricksError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksRunNotFound,
    DatabricksUnavailable,
    StoreError,
    TokenEndpointError,
)
from gateway.settings import DatabricksSettings
from tests.support.clock import Sleeps


class Flaky:
    """An async call that raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(sleeps: Sleeps, **kwargs: float) -> RetryPolicy:
    values = {"deadline": 30.0, "initial": 0.1, "maximum": 1.0, **kwargs}
    return RetryPolicy(sleep=sleeps, **values)


# --- decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "auth_failures", "retry"),
    [
        (DatabricksAuthError("refused"), 1, True),
        (DatabricksAuthError("refused again"), 2, False),
        (DatabricksRateLimited("slow down", retry_after=1), 0, True),
        (DatabricksUnavailable("503"), 0, True),
        (DatabricksUnavailable("503"), 1, True),
        (DatabricksInvalidRequest("bad spec"), 0, False),
        (DatabricksPermissionDenied("no"), 0, False),
        (DatabricksRunNotFound("gone"), 0, False),
        (DatabricksError("malformed answer"), 0, False),
        (StoreError("ledger down"), 0, False),
        (TokenEndpointError("idp down", namespace="a", transient=True), 0, False),
        (RuntimeError("bug"), 0, False),
    ],
)
def test_should_retry(exc: BaseException, auth_failures: int, retry: bool) -> None:
    """Transient Databricks errors retry; an auth failure retries once; the rest fail fast."""
    assert should_retry(exc, auth_failures=auth_failures) is retry


@pytest.mark.parametrize(
    ("exc", "backoff", "retry_after", "jitter", "wait"),
    [
        (DatabricksAuthError("refused"), 2.0, None, 0.3, 0.0),
        (DatabricksUnavailable("500"), 2.0, None, 0.3, 2.0),
        (DatabricksRateLimited("429"), 0.5, 5.0, 0.3, 5.3),
        (DatabricksRateLimited("429"), 8.0, 5.0, 0.3, 8.0),
        (DatabricksUnavailable("503"), 0.5, 0.0, 0.2, 0.5),
    ],
)
def test_retry_wait(
    exc: BaseException, backoff: float, retry_after: float | None, jitter: float, wait: float
) -> None:
    """Retry-After is a floor under the backoff; a refused token is retried at once."""
    assert retry_wait(exc, backoff, retry_after, jitter=jitter) == pytest.approx(wait)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DatabricksRateLimited("429", retry_after=3), 3.0),
        (DatabricksUnavailable("503"), None),
        (DatabricksUnavailable("503", retry_after=-1), None),
        (ValueError("x"), None),
    ],
)
def test_retry_after_of(exc: BaseException, expected: float | None) -> None:
    """Only a non-negative retry_after on the error counts."""
    assert retry_after_of(exc) == expected


def test_policy_from_settings() -> None:
    """Deadline and backoff come from the databricks settings."""
    settings = DatabricksSettings(
        retry_deadline_seconds=12, retry_initial_seconds=0.25, retry_max_seconds=4
    )
    assert RetryPolicy.from_settings(settings) == RetryPolicy(deadline=12, initial=0.25, maximum=4)


@pytest.mark.parametrize(
    ("deadline", "initial", "maximum"),
    [(0.0, 0.5, 10.0), (60.0, 0.0, 10.0), (60.0, 2.0, 1.0)],
)
def test_policy_rejects_nonsense(deadline: float, initial: float, maximum: float) -> None:
    """A policy that could never wait sensibly is refused at construction."""
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(deadline=deadline, initial=initial, maximum=maximum)


# --- the Jobs policy in motion --------------------------------------------------------------


async def test_transient_errors_are_retried_until_success() -> None:
    """5xx and dropped connections back off and try again."""
    sleeps = Sleeps()
    call = Flaky(DatabricksUnavailable("500"), DatabricksUnavailable("reset"))
    assert await policy(sleeps).run_jobs("runs/get", call) == "ok"
    assert call.calls == 3
    assert len(sleeps.calls) == 2


async def test_backoff_grows_and_is_capped() -> None:
    """Waits grow exponentially from initial, plus jitter up to initial, capped at maximum."""
    sleeps = Sleeps()
    call = Flaky(*[DatabricksUnavailable("500") for _ in range(6)])
    await policy(sleeps, initial=0.1, maximum=0.5).run_jobs("runs/get", call)
    assert 0.1 <= sleeps.calls[0] <= 0.2
    assert 0.2 <= sleeps.calls[1] <= 0.3
    assert all(s <= 0.6 for s in sleeps.calls)
    assert sleeps.calls[-1] >= 0.5


async def test_rate_limit_waits_at_least_retry_after() -> None:
    """A 429's Retry-After is honoured even when the backoff is shorter."""
    sleeps = Sleeps()
    call = Flaky(DatabricksRateLimited("429", retry_after=3))
    await policy(sleeps).run_jobs("runs/submit", call)
    assert 3.0 <= sleeps.calls[0] <= 3.1


async def test_auth_failure_is_retried_once_without_waiting() -> None:
    """One refused token: retried at once, with no backoff."""
    sleeps = Sleeps()
    call = Flaky(DatabricksAuthError("refused"))
    assert await policy(sleeps).run_jobs("runs/get", call) == "ok"
    assert sleeps.calls == [0.0]


async def test_second_auth_failure_is_final() -> None:
    """Two refused tokens in one call: the second error is raised."""
    call = Flaky(DatabricksAuthError("first"), DatabricksAuthError("second"))
    with pytest.raises(DatabricksAuthError, match="second"):
        await policy(Sleeps()).run_jobs("runs/get", call)
    assert call.calls == 2


async def test_auth_failures_count_across_transient_errors() -> None:
    """A 503 between two refusals does not buy a second token refresh."""
    call = Flaky(
        DatabricksAuthError("first"), DatabricksUnavailable("503"), DatabricksAuthError("second")
    )
    with pytest.raises(DatabricksAuthError, match="second"):
        await policy(Sleeps()).run_jobs("runs/get", call)
    assert call.calls == 3


async def test_each_call_gets_its_own_auth_retry() -> None:
    """The once-only rule is per call, not per policy."""
    retry = policy(Sleeps())
    for _ in range(2):
        assert await retry.run_jobs("runs/get", Flaky(DatabricksAuthError("refused"))) == "ok"


@pytest.mark.parametrize(
    "exc",
    [
        DatabricksInvalidRequest("INVALID_PARAMETER_VALUE: bad spec"),
        DatabricksPermissionDenied("PERMISSION_DENIED: no"),
        DatabricksRunNotFound("Run 1 does not exist."),
    ],
)
async def test_permanent_errors_fail_fast(exc: DatabricksError) -> None:
    """400, 403 and 404 are raised after one attempt, as they came."""
    sleeps = Sleeps()
    call = Flaky(exc)
    with pytest.raises(type(exc)) as raised:
        await policy(sleeps).run_jobs("runs/submit", call)
    assert raised.value is exc
    assert call.calls == 1
    assert sleeps.calls == []


async def test_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    """A wait that would end past the deadline is not made; the 429 is raised."""
    sleeps = Sleeps()
    call = Flaky(DatabricksRateLimited("429", retry_after=100))
    with pytest.raises(DatabricksRateLimited):
        await policy(sleeps, deadline=5).run_jobs("runs/submit", call)
    assert call.calls == 1
    assert sleeps.calls == []


async def test_deadline_bounds_the_whole_call() -> None:
    """An endless run of 503s gives up once the deadline has passed."""
    retry = RetryPolicy(deadline=0.2, initial=0.01, maximum=0.02)
    call = Flaky(*[DatabricksUnavailable("503") for _ in range(1000)])
    started = time.monotonic()
    with pytest.raises(DatabricksUnavailable):
        await retry.run_jobs("runs/get", call)
    assert time.monotonic() - started < 0.5
    assert 3 < call.calls < 1000


async def test_the_first_attempts_time_counts_toward_the_deadline() -> None:
    """A slow first try spends the deadline like any other: the retry it leaves no room for
    is not made, though the wait alone would fit in the whole deadline."""

    class SlowThenBusy:
        calls = 0

        async def __call__(self) -> str:
            self.calls += 1
            await asyncio.sleep(0.25)
            raise DatabricksRateLimited("429", retry_after=0.1)

    sleeps = Sleeps()
    call = SlowThenBusy()
    with pytest.raises(DatabricksRateLimited):
        await policy(sleeps, deadline=0.3, initial=0.01, maximum=0.02).run_jobs("runs/get", call)
    assert call.calls == 1
    assert sleeps.calls == []


async def test_a_call_that_succeeds_at_once_is_tried_once() -> None:
    sleeps = Sleeps()
    call = Flaky()
    assert await policy(sleeps).run_jobs("runs/get", call) == "ok"
    assert (call.calls, sleeps.calls) == (1, [])


async def test_retries_are_logged_with_a_constant_event() -> None:
    """Every retry logs databricks_call_retrying with the endpoint and the error."""
    call = Flaky(DatabricksRateLimited("429 slow down", http_status=429, retry_after=1))
    with capture_logs() as logs:
        await policy(Sleeps()).run_jobs("runs/submit", call)
    (event,) = [e for e in logs if e["event"] == "databricks_call_retrying"]
    assert event["endpoint"] == "runs/submit"
    assert event["error"] == "DatabricksRateLimited"
    assert event["http_status"] == 429
    assert event["attempt"] == 1
    assert event["wait_seconds"] >= 1


# --- the token endpoint policy --------------------------------------------------------------


async def test_token_policy_retries_transient_failures_with_the_hint() -> None:
    """A transient token endpoint failure waits at least the Retry-After it came with."""
    sleeps = Sleeps()
    busy = TokenEndpointError("429", namespace="a", transient=True)
    call = Flaky(busy)
    retrying = policy(sleeps).token_endpoint(
        "https://h/oidc/v1/token", retry_after=lambda exc: 2.0 if exc is busy else None
    )
    assert await retrying(call) == "ok"
    assert 2.0 <= sleeps.calls[0] <= 2.1


async def test_token_policy_fails_fast_on_refusals() -> None:
    """invalid_client is final: retrying a wrong secret cannot help."""
    call = Flaky(TokenEndpointError("invalid_client", namespace="a", http_status=401))
    with pytest.raises(TokenEndpointError, match="invalid_client"):
        await policy(Sleeps()).token_endpoint("https://h/t", retry_after=lambda _: None)(call)
    assert call.calls == 1
