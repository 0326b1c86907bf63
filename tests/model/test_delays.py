"""The submit backoff and the postpone delay: pure, jitter passed in, tested by tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import next_poll_delay, postpone_delay, submit_retry_delay

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


# --- a group's list walk ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "pages", "delay"),
    [(0, 1, 5), (0, 2, 10), (0, 4, 20), (300, 4, 30), (0, 12, 60), (0, 100, 60), (900, 2, 60)],
)
def test_a_longer_walk_waits_a_shortest_interval_per_page(
    age: float, pages: int, delay: float
) -> None:
    """A walk of p pages waits at least p * min (the age rule may ask more), never past max."""
    got = next_poll_delay(age, min_interval=LOW, max_interval=HIGH, jitter=0.5, pages=pages)
    assert got == pytest.approx(delay)


@given(
    age=st.floats(min_value=0, max_value=1e5),
    pages=st.integers(min_value=1, max_value=1000),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_group_costs_at_most_a_page_per_shortest_interval(
    age: float, pages: int, jitter: float
) -> None:
    """Below the longest interval a walk's pages per second stay within 1 / (0.8 * min): the
    cost of a group does not grow with its runs (jitter may shorten the wait by a fifth)."""
    got = next_poll_delay(age, min_interval=LOW, max_interval=HIGH, jitter=jitter, pages=pages)
    assert LOW <= got <= HIGH
    assert got >= 0.8 * min(HIGH, LOW * pages)


def test_a_walk_of_no_pages_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="pages"):
        next_poll_delay(10, min_interval=LOW, max_interval=HIGH, jitter=0.5, pages=0)
