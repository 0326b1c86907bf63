"""What an attempt's outcome means and when to try again, pure.

2xx is delivered. 410 Gone disables the endpoint (the event is dead until redelivered). Any
other status (3xx included: redirects are never followed), a timeout or a connection error is
a failure: the next try waits the schedule's next delay, or longer when a 429 or 503 said so
with Retry-After, and after the schedule's last try the event is dead. The schedule's first
entry is the first try, made when the event is written.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime

# Retry-After is honoured up to this long; a receiver cannot park an event for days.
MAX_RETRY_AFTER_SECONDS = 36_000.0
_SLOW_DOWN = frozenset({429, 503})


class Verdict(enum.StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


def verdict(status: int | None) -> Verdict:
    """The meaning of an HTTP status (None: no answer at all)."""
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.FAILED


def retry_after_seconds(status: int | None, header: str | None, now: datetime) -> float | None:
    """Seconds a 429 or 503 asked us to wait (delta-seconds or an HTTP date), else None."""
    if status not in _SLOW_DOWN or not header:
        return None
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)


def next_delay(
    attempts: int, schedule: Sequence[float], retry_after: float | None = None
) -> float | None:
    """Seconds until the next try after ``attempts`` failed tries; None: the event is dead."""
    if attempts < 1:
        raise ValueError("next_delay follows a failed attempt")
    if attempts >= len(schedule):
        return None
    delay = schedule[attempts]
    return delay if retry_after is None else max(delay, retry_after)
