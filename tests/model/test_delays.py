"""The submit backoff and the postpone delay: pure, jitter passed in, tested by tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import postpone_delay, submit_retry_delay

# The default poller: 5 s to 60 s.
LOW, HIGH = 5.0, 60.0


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (6, 60), (100, 60)],
)
def test_each_failed_submission_doubles_the_wait_up_to_the_longest_interval(
    attempts: int, delay: float
) -> None:
    """Without jitter the wait is min * 2**(attempts - 1), never past max."""
    assert submit_retry_delay(attempts, min_interval=LOW, max_interval=HIGH, jitter=0.5) == delay


@pytest.mark.parametrize(("attempts", "delay"), [(7, 320), (8, 320), (50, 320)])
def test_the_doubling_stops_after_six(attempts: int, delay: float) -> None:
    """With a generous ceiling the wait stops growing at 2**6 times the shortest interval."""
    assert submit_retry_delay(attempts, min_interval=5, max_interval=3600, jitter=0.5) == delay


@pytest.mark.parametrize(("jitter", "factor"), [(0.0, 0.8), (0.25, 0.9), (0.5, 1.0), (0.75, 1.1)])
def test_jitter_spreads_a_submit_wait_by_a_fifth_either_way(jitter: float, factor: float) -> None:
    """A jitter draw of j scales the wait by 1 + 0.2 * (2j - 1), beyond the ceiling too."""
    for attempts, base in [(2, 10.0), (9, 60.0)]:
        got = submit_retry_delay(attempts, min_interval=LOW, max_interval=HIGH, jitter=jitter)
        assert got == pytest.approx(base * factor)


@given(
    attempts=st.integers(min_value=1, max_value=1000),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_submit_wait_stays_within_a_fifth_of_its_bounds(attempts: int, jitter: float) -> None:
    """Whatever the attempt and the draw, the wait is in [0.8 * min, 1.2 * max]."""
    got = submit_retry_delay(attempts, min_interval=LOW, max_interval=HIGH, jitter=jitter)
    assert 0.8 * LOW <= got <= 1.2 * HIGH


@pytest.mark.parametrize(
    ("attempts", "low", "high", "jitter"),
    [(0, 5, 60, 0.5), (1, 0, 60, 0.5), (1, 10, 5, 0.5), (1, 5, 60, 1.0), (1, 5, 60, -0.1)],
    ids=["no-attempt", "zero-min", "min-over-max", "jitter-one", "jitter-negative"],
)
def test_submit_wait_refuses_arguments_out_of_range(
    attempts: int, low: float, high: float, jitter: float
) -> None:
    """Attempts below one, bad intervals or a draw outside [0, 1) are caller bugs."""
    with pytest.raises(ValueError, match=r"attempts|interval|jitter"):
        submit_retry_delay(attempts, min_interval=low, max_interval=high, jitter=jitter)


@pytest.mark.parametrize(("jitter", "delay"), [(0.0, 5.0), (0.5, 7.5), (0.9, 9.5)])
def test_a_failed_poll_waits_one_to_two_shortest_intervals(jitter: float, delay: float) -> None:
    """The postpone wait is min * (1 + jitter): at least one interval, under two."""
    assert postpone_delay(LOW, jitter=jitter) == pytest.approx(delay)


@pytest.mark.parametrize(("low", "jitter"), [(0.0, 0.5), (-1.0, 0.5), (5.0, 1.0), (5.0, -0.5)])
def test_postpone_refuses_arguments_out_of_range(low: float, jitter: float) -> None:
    """A non-positive interval or a draw outside [0, 1) is a caller bug."""
    with pytest.raises(ValueError, match=r"interval|jitter"):
        postpone_delay(low, jitter=jitter)
