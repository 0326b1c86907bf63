"""How long to wait: before polling a run again, before submitting again, after a failed poll.

Every delay takes its jitter (a uniform draw in [0, 1)) as an argument, so these stay pure and
are tested by tables; the caller owns the random source.
"""

from __future__ import annotations


def _check(min_interval: float, max_interval: float, jitter: float) -> None:
    if not 0 < min_interval <= max_interval:
        raise ValueError("need 0 < min_interval <= max_interval")
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")


# --- polling ----------------------------------------------------------------------------------

# A run is polled about every tenth of its age: a minute-old run every few seconds, an
# hour-old one every few minutes, so long runs do not spend the per-workspace request budget.
POLL_AGE_FRACTION = 0.1
POLL_JITTER_FRACTION = 0.2


def next_poll_delay(
    age_seconds: float,
    *,
    min_interval: float,
    max_interval: float,
    jitter: float,
    pages: int = 1,
) -> float:
    """Seconds until a run of this age (or a group whose youngest run it is) is polled again.

    Before jitter the delay is ``age * POLL_AGE_FRACTION`` held within [min, max], so it never
    shrinks as a run ages. A group refreshed by a runs/list walk of ``pages`` pages waits at
    least ``pages * min`` (still at most max): a group costs at most one page per shortest
    interval however many runs it holds, so at scale the calls per run fall with the group's
    size instead of staying at one page per 25 runs per interval. ``jitter`` (a uniform draw
    in [0, 1), supplied by the caller so this stays pure) spreads it by up to
    ``POLL_JITTER_FRACTION`` either way, so runs submitted together, or found due together
    after a restart, do not poll in lockstep; the bounds still win over jitter. A negative or
    NaN age (clocks disagree) counts as zero.
    """
    _check(min_interval, max_interval, jitter)
    if pages < 1:
        raise ValueError("pages counts the walk's runs/list pages: at least 1")
    age = age_seconds if age_seconds >= 0 else 0.0
    base = min(max(age * POLL_AGE_FRACTION, min_interval * pages), max_interval)
    spread = 1 + POLL_JITTER_FRACTION * (2 * jitter - 1)
    return min(max(base * spread, min_interval), max_interval)


# --- submitting again -------------------------------------------------------------------------

# A submission Databricks did not answer is tried again after the poller's shortest interval,
# doubling with each attempt up to 2**6 times that, never past the longest interval; the
# jitter then spreads it by up to a fifth either way, so submissions deferred together by one
# outage do not all come back at once.
SUBMIT_BACKOFF_DOUBLINGS = 6
SUBMIT_JITTER_FRACTION = 0.2


def submit_retry_delay(
    attempts: int, *, min_interval: float, max_interval: float, jitter: float
) -> float:
    """Seconds until a run whose ``attempts``-th submission failed is submitted again."""
    if attempts < 1:
        raise ValueError("attempts counts the failed submission: at least 1")
    _check(min_interval, max_interval, jitter)
    doublings = min(attempts - 1, SUBMIT_BACKOFF_DOUBLINGS)
    base = min(max_interval, min_interval * 2.0**doublings)
    return base * (1 + SUBMIT_JITTER_FRACTION * (2 * jitter - 1))


# --- after a failed poll ----------------------------------------------------------------------


def postpone_delay(min_interval: float, *, jitter: float) -> float:
    """Seconds until a group whose poll failed (identity or Databricks away) is tried again.

    Between one and two of the poller's shortest intervals: soon enough that a brief outage
    costs little, spread so the groups it hit do not all come back in the same tick.
    """
    _check(min_interval, min_interval, jitter)
    return min_interval * (1 + jitter)
