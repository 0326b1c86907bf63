"""Run-hours arithmetic for ``quotas.run_hours_per_day``: pure, no I/O.

A namespace's run time is, over a rolling day, the time each of its runs held an active slot
(from SUBMITTING to its end, or now) clipped to the window [now - 24 h, now]. Runs are given as
spans (start, end or None while active), as the ledger's ``run_spans`` reads them.

``budget_wait`` answers the Retry-After of a run refused over the budget: how long until the
window's run time is under the budget again, if nothing new starts and the active runs keep
running (the cautious assumption: a run that ends sooner only frees the budget sooner). Run
time is piecewise linear in time, so the answer is exact: each finished run stops counting as
its span slides out of the window, and each active run counts one more second per second until
its start leaves the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

Span = tuple[datetime, datetime | None]

DAY_SECONDS = 86_400.0
# The budget counts as freed once this much run time is under it, so a retry at the computed
# moment is admitted rather than meeting the budget exactly.
HEADROOM_SECONDS = 1.0


def _offsets(span: Span, now: datetime) -> tuple[float, float | None]:
    start, end = span
    return (
        (start - now).total_seconds(),
        None if end is None else (min(end, now) - now).total_seconds(),
    )


def used_seconds(spans: Sequence[Span], now: datetime, window: float = DAY_SECONDS) -> float:
    """The run time of ``spans`` within the ``window`` seconds before ``now``."""
    total = 0.0
    for span in spans:
        start, end = _offsets(span, now)
        total += max(0.0, (0.0 if end is None else end) - max(start, -window))
    return total


def _slope_events(
    spans: Sequence[Span], now: datetime, window: float
) -> tuple[float, list[tuple[float, float]]]:
    """The run time's slope just after ``now`` and its changes: (seconds from now, change)."""
    slope, events = 0.0, []
    for span in spans:
        start, end = _offsets(span, now)
        if start >= 0:
            continue  # not started yet: nothing to count
        leaves = start + window  # when the span's start slides out of the window
        if end is None:
            if leaves > 0:
                slope += 1.0
                events.append((leaves, -1.0))
            continue
        gone = end + window
        if gone <= 0:
            continue
        if leaves > 0:
            events.append((leaves, -1.0))
        else:
            slope -= 1.0
        events.append((gone, 1.0))
    return slope, sorted(events)


def budget_wait(
    spans: Sequence[Span], now: datetime, budget_seconds: float, window: float = DAY_SECONDS
) -> float | None:
    """Seconds from ``now`` until the run time is under ``budget_seconds`` by the headroom.

    0 when it is already; None when the active runs alone keep it over for as long as they run.
    """
    target = budget_seconds - HEADROOM_SECONDS
    used = used_seconds(spans, now, window)
    if used <= target:
        return 0.0
    slope, events = _slope_events(spans, now, window)
    at = 0.0
    for moment, change in events:
        if slope < 0 and used + slope * (moment - at) <= target:
            return at + (used - target) / -slope
        used += slope * (moment - at)
        at, slope = moment, slope + change
    return None
