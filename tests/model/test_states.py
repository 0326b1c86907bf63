"""The run state machine, polling intervals and request identity: pure, no event loop."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    IllegalTransition,
    RunState,
    can_transition,
    databricks_idempotency_token,
    next_poll_delay,
    reconcile,
    request_fingerprint,
    transition,
)
from gateway.model.records import canonical_json
from tests.support.json_values import REAL_TEXT, json_values

S = RunState
ENDS = {S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELED, S.SKIPPED, S.INTERNAL_ERROR}

# Written out by hand, not derived from the module, so a change to the machine shows up here.
LEGAL: dict[RunState, set[RunState]] = {
    S.QUEUED: {S.SUBMITTING, S.CANCELED, S.REJECTED},
    S.SUBMITTING: {S.PENDING, S.RUNNING, S.TERMINATING, S.REJECTED} | ENDS,
    S.PENDING: {S.RUNNING, S.TERMINATING} | ENDS,
    S.RUNNING: {S.TERMINATING} | ENDS,
    S.TERMINATING: set(ENDS),
    **{end: set() for end in ENDS | {S.REJECTED}},
}
ALL_PAIRS = list(itertools.product(RunState, RunState))


def test_terminal_states_are_the_seven_ends() -> None:
    """Exactly the seven outcomes are terminal, and the record property agrees."""
    assert ENDS | {S.REJECTED} == TERMINAL_STATES
    assert all(state.terminal == (state in TERMINAL_STATES) for state in RunState)


def test_active_states_hold_quota_from_submission_to_the_end() -> None:
    """A run holds an active slot from SUBMITTING until it ends, and never while queued."""
    assert frozenset({S.SUBMITTING, S.PENDING, S.RUNNING, S.TERMINATING}) == ACTIVE_STATES


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: str(s))
def test_can_transition_matches_the_matrix(current: RunState, target: RunState) -> None:
    """Every pair of states is allowed exactly when the hand-written matrix says so."""
    assert can_transition(current, target) == (current == target or target in LEGAL[current])


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: str(s))
def test_transition_returns_target_or_raises(current: RunState, target: RunState) -> None:
    """transition() returns the target for a legal move and raises IllegalTransition otherwise."""
    if current == target or target in LEGAL[current]:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as info:
            transition(current, target)
        assert (info.value.current, info.value.target) == (current, target)
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("end", sorted(TERMINAL_STATES))
def test_no_way_out_of_a_terminal_state(end: RunState) -> None:
    """A terminal state can only stay where it is."""
    assert [t for t in RunState if can_transition(end, t)] == [end]


@pytest.mark.parametrize(
    ("current", "observed", "expected"),
    [
        (S.SUBMITTING, S.PENDING, S.PENDING),
        (S.PENDING, S.SUCCEEDED, S.SUCCEEDED),
        (S.RUNNING, S.RUNNING, None),
        (S.RUNNING, S.PENDING, None),
        (S.TERMINATING, S.RUNNING, None),
        (S.CANCELED, S.SUCCEEDED, None),
        (S.PENDING, S.REJECTED, None),
    ],
)
def test_reconcile_records_only_forward_news(
    current: RunState, observed: RunState, expected: RunState | None
) -> None:
    """reconcile() moves forward, and ignores repeats, steps back and anything after the end."""
    assert reconcile(current, observed) == expected


@given(st.lists(st.sampled_from(list(RunState)), max_size=30))
def test_legal_sequences_never_leave_a_terminal_state(targets: list[RunState]) -> None:
    """Applying any sequence of attempted moves, a run that ends stays ended and unchanged."""
    state = S.QUEUED
    ended: RunState | None = None
    for target in targets:
        if can_transition(state, target):
            state = transition(state, target)
        else:
            with pytest.raises(IllegalTransition):
                transition(state, target)
        if ended is not None:
            assert state == ended
        elif state.terminal:
            ended = state


@given(st.lists(st.sampled_from(list(RunState)), max_size=30))
def test_reconciled_sequences_only_move_forward(observations: list[RunState]) -> None:
    """Whatever Databricks reports, reconcile() only ever produces legal transitions."""
    state = S.SUBMITTING
    for observed in observations:
        news = reconcile(state, observed)
        if news is not None:
            assert news != state
            assert can_transition(state, news)
            state = news


# --- next_poll_delay --------------------------------------------------------------------------


def test_young_runs_are_polled_at_the_minimum() -> None:
    """A run just submitted is polled at min_interval (jitter at its midpoint)."""
    assert next_poll_delay(0, min_interval=2, max_interval=60, jitter=0.5) == 2


def test_old_runs_are_polled_at_the_maximum() -> None:
    """A run hours old is polled at max_interval."""
    assert next_poll_delay(36_000, min_interval=2, max_interval=60, jitter=0.5) == 60


def test_delay_grows_with_age_in_between() -> None:
    """Between the bounds the delay follows the run's age."""
    assert next_poll_delay(100, min_interval=2, max_interval=60, jitter=0.5) == pytest.approx(10)
    assert next_poll_delay(300, min_interval=2, max_interval=60, jitter=0.5) == pytest.approx(30)


def test_jitter_spreads_the_delay_both_ways() -> None:
    """Low and high jitter give a shorter and a longer delay than the midpoint."""
    low = next_poll_delay(100, min_interval=2, max_interval=60, jitter=0.0)
    high = next_poll_delay(100, min_interval=2, max_interval=60, jitter=0.999)
    assert low == pytest.approx(8)
    assert 11.9 < high < 12
    assert low < 10 < high


@given(
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=1, max_value=100),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_delay_is_monotone_in_age_and_bounded(
    a: float, b: float, lo: float, width: float, jitter: float
) -> None:
    """For a fixed jitter an older run never waits less, and every delay stays in bounds."""
    hi = lo + width
    young, old = sorted((a, b))
    d_young = next_poll_delay(young, min_interval=lo, max_interval=hi, jitter=jitter)
    d_old = next_poll_delay(old, min_interval=lo, max_interval=hi, jitter=jitter)
    assert lo <= d_young <= d_old <= hi


@pytest.mark.parametrize("age", [-5.0, math.nan])
def test_nonsense_ages_count_as_new(age: float) -> None:
    """A negative or NaN age (clock skew) is polled like a brand-new run."""
    assert next_poll_delay(age, min_interval=3, max_interval=60, jitter=0.5) == 3


@pytest.mark.parametrize(
    ("lo", "hi", "jitter"),
    [(0, 10, 0.5), (5, 4, 0.5), (1, 10, 1.0), (1, 10, -0.1), (1, 10, math.nan)],
)
def test_bad_poll_parameters_are_refused(lo: float, hi: float, jitter: float) -> None:
    """Non-positive or inverted bounds, and jitter outside [0, 1), raise ValueError."""
    with pytest.raises(ValueError, match=r"min_interval|jitter"):
        next_poll_delay(10, min_interval=lo, max_interval=hi, jitter=jitter)


# --- request identity -------------------------------------------------------------------------


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    """The same body in another key order has the same fingerprint; another body does not."""
    a = request_fingerprint({"run_name": "x", "tasks": [{"task_key": "a"}]})
    b = request_fingerprint({"tasks": [{"task_key": "a"}], "run_name": "x"})
    c = request_fingerprint({"tasks": [{"task_key": "b"}], "run_name": "x"})
    assert a == b != c


def _standard_canonical(value: Any) -> bytes:
    """How every fingerprint was made before orjson: the bytes stored ones depend on."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(st.dictionaries(REAL_TEXT, json_values(text=REAL_TEXT, int_bits=70), max_size=5))
def test_the_canonical_bytes_are_the_standard_encoders(body: dict[str, Any]) -> None:
    """With floats or without, integers past 64 bits, any text: the same bytes as before."""
    assert canonical_json(body) == _standard_canonical(body)


@pytest.mark.parametrize(
    ("body", "digest"),
    [
        (
            {"spec": {"run_name": "nightly", "tasks": [{"task_key": "é", "timeout_seconds": 3600,
             "ok": True, "n": None}]}, "callback_url": None, "labels": {"team": "data"},
             "identity": {}},
            "8df0b549af6b6da69aae8b318151fded0a26c4d8eafff04f78a62488a99470f8",
        ),
        (
            {"spec": {"run_name": "nightly", "tasks": [{"task_key": "é", "timeout_seconds": 3600,
             "x": 1.5e16, "big": 2**70, "n": None, "ok": True}]}, "callback_url": None,
             "labels": {"team": "data"}, "identity": {}},
            "ec8b78ed26ef2295b231169634b2db2a1ad23e7adc4590c89fab00935a10f999",
        ),
    ],
)  # fmt: skip
def test_a_fingerprint_stored_by_an_earlier_version_still_matches(
    body: dict[str, Any], digest: str
) -> None:
    """Digests computed with json.dumps before the orjson path: a retry across an upgrade
    must still be recognised as the same request."""
    assert request_fingerprint(body) == digest


def test_idempotency_token_fits_databricks_limit_for_any_int64_id() -> None:
    """A 32-character installation id and the largest int64 run id still fit in 64 characters."""
    token = databricks_idempotency_token("f" * 32, 2**63 - 1)
    assert token.startswith("lakegate-" + "f" * 32 + "-")
    assert len(token) <= 64


def test_idempotency_token_over_64_characters_is_refused() -> None:
    """An installation id too long for Databricks' limit raises instead of being truncated."""
    with pytest.raises(ValueError, match="64"):
        databricks_idempotency_token("x" * 60, 1)
