"""Run-hours arithmetic (pure): the window's run time and when it falls under a budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.runs.budget import DAY_SECONDS, HEADROOM_SECONDS, Span, budget_wait, used_seconds

NOW = datetime(2026, 1, 2, tzinfo=UTC)
H = 3600.0


def span(start_h: float, end_h: float | None = None) -> Span:
    """A span given in hours from NOW (negative: in the past)."""
    end = None if end_h is None else NOW + timedelta(hours=end_h)
    return (NOW + timedelta(hours=start_h), end)


@pytest.mark.parametrize(
    ("spans", "hours"),
    [
        ([], 0.0),
        ([span(-2, -1)], 1.0),
        ([span(-30, -23)], 1.0),  # clipped to the window's start
        ([span(-30, -25)], 0.0),  # ended before the window
        ([span(-3)], 3.0),  # active: up to now
        ([span(-30)], 24.0),  # active for more than a day: the whole window
        ([span(-2, -1), span(-1)], 2.0),
    ],
)
def test_used_seconds_clips_each_span_to_the_day(spans: list[Span], hours: float) -> None:
    """A run counts from its start (or the window's) to its end (or now)."""
    assert used_seconds(spans, NOW) == pytest.approx(hours * H)


def test_a_finished_run_frees_the_budget_as_it_slides_out() -> None:
    """10 h that ended 2 h ago, budget 5 h: its start leaves the window in 12 h, then it loses
    a second per second until 5 h and the headroom are gone."""
    assert budget_wait([span(-12, -2)], NOW, 5 * H) == pytest.approx(17 * H + HEADROOM_SECONDS)


def test_an_active_run_delays_the_free_moment() -> None:
    """An active run keeps counting until its start leaves the window (1 h from now here), so
    the finished run must free an hour more than the budget's excess alone."""
    spans = [span(-20, -10), span(-23)]  # 10 h finished + 23 h active = 33 h
    assert budget_wait(spans, NOW, 30 * H) == pytest.approx(8 * H + HEADROOM_SECONDS)


def test_under_budget_is_no_wait_and_active_runs_alone_are_none() -> None:
    """0 under the budget; None when only the end of an active run can free it."""
    assert budget_wait([span(-1, 0)], NOW, 2 * H) == 0.0
    assert budget_wait([span(-30), span(-30)], NOW, 24 * H) is None


SPANS = st.lists(
    st.tuples(
        st.floats(-30 * H, -1, allow_nan=False),
        st.one_of(st.none(), st.floats(0, 30 * H, allow_nan=False)),
    ),
    max_size=12,
)


def _spans(raw: list[tuple[float, float | None]]) -> list[Span]:
    return [
        (
            NOW + timedelta(seconds=start),
            None if length is None else min(NOW, NOW + timedelta(seconds=start + length)),
        )
        for start, length in raw
    ]


@settings(max_examples=300, deadline=None)
@given(SPANS, st.floats(1 * H, 48 * H, allow_nan=False))
def test_the_wait_is_the_first_moment_under_budget(
    raw: list[tuple[float, float | None]], budget: float
) -> None:
    """At the computed moment the run time is under budget (active runs still running), and
    at no earlier moment sampled was it."""
    spans = _spans(raw)
    wait = budget_wait(spans, NOW, budget)
    target = budget - HEADROOM_SECONDS
    if wait is None:
        assert used_seconds(spans, NOW + timedelta(seconds=2 * DAY_SECONDS)) > target
        return
    assert used_seconds(spans, NOW + timedelta(seconds=wait)) <= target + 1e-3
    for fraction in (0.0, 0.25, 0.5, 0.9, 0.999):
        early = wait * fraction - 1e-3
        if early > 0:
            assert used_seconds(spans, NOW + timedelta(seconds=early)) > target - 1e-3
