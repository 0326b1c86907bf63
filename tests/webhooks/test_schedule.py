"""What an attempt's outcome means and when the next try is, as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.settings.webhooks import DEFAULT_RETRY_SCHEDULE
from gateway.webhooks.schedule import (
    MAX_RETRY_AFTER_SECONDS,
    Verdict,
    next_delay,
    retry_after_seconds,
    verdict,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED), (204, Verdict.DELIVERED), (299, Verdict.DELIVERED),
        (301, Verdict.FAILED), (302, Verdict.FAILED), (308, Verdict.FAILED),  # never followed
        (400, Verdict.FAILED), (404, Verdict.FAILED), (429, Verdict.FAILED),
        (410, Verdict.GONE), (500, Verdict.FAILED), (503, Verdict.FAILED), (None, Verdict.FAILED),
    ],
)  # fmt: skip
def test_verdicts(status: int | None, expected: Verdict) -> None:
    """2xx delivers, 410 disables, everything else (3xx, no answer) is a failure."""
    assert verdict(status) is expected


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "7", 7.0),
        (503, "120", 120.0),
        (503, "Thu, 01 Jan 2026 12:01:00 GMT", 60.0),
        (503, "Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        (429, "9999999", MAX_RETRY_AFTER_SECONDS),
        (500, "7", None),  # only 429 and 503 ask us to slow down
        (429, None, None),
        (429, "soon", None),
    ],
)
def test_retry_after(status: int, header: str | None, expected: float | None) -> None:
    """Retry-After in seconds or as a date, capped, and only on 429 and 503."""
    assert retry_after_seconds(status, header, NOW) == expected


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [(1, None, 5.0), (2, None, 300.0), (7, None, 36000.0), (8, None, None), (1, 60.0, 60.0),
     (2, 60.0, 300.0), (8, 60.0, None)],
)  # fmt: skip
def test_next_delay_follows_the_default_schedule(
    attempts: int, retry_after: float | None, expected: float | None
) -> None:
    """After try n comes schedule[n], or Retry-After when longer; after the last, dead."""
    assert next_delay(attempts, DEFAULT_RETRY_SCHEDULE, retry_after) == expected


def test_next_delay_needs_a_failed_try() -> None:
    """Asking before any try is a caller bug."""
    with pytest.raises(ValueError, match="failed attempt"):
        next_delay(0, DEFAULT_RETRY_SCHEDULE)
