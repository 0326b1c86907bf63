"""Jittered exponential backoff for the informer's reconnects."""

from __future__ import annotations

import pytest

from gateway.kube.backoff import Backoff


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (9, 8.0)]
)
def test_grows_and_caps_without_jitter(attempt: int, expected: float) -> None:
    """Without jitter the delay doubles per attempt up to the maximum."""
    assert Backoff(initial=1, maximum=8, jitter=0).delay(attempt) == expected


def test_jitter_stays_within_half_and_all_of_the_delay() -> None:
    """With jitter 0.5 a delay lies between half and all of the capped value, never zero."""
    backoff = Backoff(initial=2, maximum=2, jitter=0.5)
    assert backoff.delay(0, rand=lambda: 0.0) == 2.0
    assert backoff.delay(0, rand=lambda: 0.999999) == pytest.approx(1.0, abs=1e-5)


def test_huge_attempt_counts_do_not_overflow() -> None:
    """A loop that failed for days still gets the maximum, not an OverflowError."""
    assert Backoff(initial=1, maximum=30, jitter=0).delay(10_000) == 30


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 5, "maximum": 1}, {"multiplier": 0.5}, {"jitter": 2}],
)
def test_invalid_parameters_are_refused(kwargs: dict[str, float]) -> None:
    """Nonsense parameters fail at construction."""
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)
