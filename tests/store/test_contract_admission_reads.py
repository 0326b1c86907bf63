"""Store contract: what create_run reads for an admission that says what it needs.

The bucket the store checks itself (``UsageNeeds.rate``) gives exactly ``rate_wait``'s
verdict on the same history, and the mean run time is read only when ``decide`` asks for it
(a refusal's Retry-After), in the same transaction.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.errors import QuotaExceeded
from gateway.model import NamespaceUsage, RunState
from gateway.runs.admission import (
    UNMEASURED_WAIT_SECONDS,
    decide,
    promotion_needs,
    rate_wait,
    still_fits,
    usage_needs,
)
from gateway.settings import QuotaSettings
from gateway.store import Admission, Admit, Store
from gateway.store.base import EVERY_USAGE, RateRule, UsageNeeds
from tests.store.factories import NOW, at, new_run

S = RunState
_names = itertools.count()


class Seen(Exception):
    """Carries what admit saw out of create_run; the refusal stores nothing."""

    def __init__(self, usage: NamespaceUsage) -> None:
        super().__init__("seen")
        self.usage = usage


def _look(usage: NamespaceUsage) -> RunState:
    raise Seen(usage)


async def seen_by_admit(store: Store, namespace: str, now: datetime, needs: UsageNeeds) -> Seen:
    """The usage create_run hands ``admit`` at ``now``; the refusal keeps the run out."""
    with pytest.raises(Seen) as caught:
        await store.create_run(new_run(namespace), now, admit=_look, needs=needs)
    return caught.value


def expected(history: list[datetime], now: datetime, rule: RateRule) -> tuple[float, int]:
    """rate_wait over the window the ledger keeps (the newest 1,024 of the last hour), and the
    refusal's last-minute count."""
    window = sorted((t for t in history if now - t < timedelta(hours=1)), reverse=True)[:1024]
    wait = rate_wait(window, now, per_minute=rule.per_minute, burst=rule.burst)
    last_minute = sum(1 for t in window if (now - t).total_seconds() < 60) if wait > 0 else 0
    return wait, last_minute


# Ages in microseconds: mostly the last two minutes (where the bucket is decided), some up to
# past the hour, with ties.
AGES = st.one_of(
    st.integers(0, 120_000_000),
    st.integers(0, 3_700_000_000),
    st.sampled_from([0, 1, 59_999_999, 60_000_000, 3_599_999_999, 3_600_000_000]),
)
RULES = st.builds(
    RateRule,
    per_minute=st.one_of(
        st.sampled_from([1.0, 7.0, 60.0, 120.0, 600.0]), st.floats(0.01, 6_000, allow_nan=False)
    ),
    burst=st.integers(1, 8),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ages=st.lists(AGES, max_size=30), rule=RULES, later=st.integers(0, 5_000_000))
async def test_the_bucket_checked_by_the_store_is_rate_wait(
    store: Store, ages: list[int], rule: RateRule, later: int
) -> None:
    """On any history, the store's verdict is rate_wait's, to the bit, and the count the
    refusal quotes is the window's last minute."""
    namespace = f"ns-{next(_names)}"  # each example its own history, on the one ledger
    history = [NOW - timedelta(microseconds=age) for age in ages]
    for moment in history:
        await store.create_run(new_run(namespace), moment)
    now = NOW + timedelta(microseconds=later)
    seen = (await seen_by_admit(store, namespace, now, UsageNeeds(rate=rule))).usage
    assert (seen.rate_wait_seconds, seen.rate_last_minute) == expected(history, now, rule)
    assert seen.recent_submissions == ()
    event("refused" if seen.rate_wait_seconds else "fits")


async def test_the_bucket_looks_at_the_newest_1024_runs_only(store: Store) -> None:
    """Past RATE_ROWS runs in the hour, the oldest are not counted, as before."""
    history = [at(-3_000 + i) for i in range(1_100)]  # one a second, 1,100 within the hour
    for moment in history:
        await store.create_run(new_run(), moment)
    now = at(-3_000 + 1_100)
    for rule in [RateRule(per_minute=1.0, burst=1), RateRule(per_minute=30.0, burst=5)]:
        seen = (await seen_by_admit(store, "team-a", now, UsageNeeds(rate=rule))).usage
        full = (await seen_by_admit(store, "team-a", now, EVERY_USAGE)).usage
        assert len(full.recent_submissions) == 1_024
        assert (seen.rate_wait_seconds, seen.rate_last_minute) == expected(history, now, rule)
        assert seen.rate_wait_seconds == rate_wait(
            full.recent_submissions, now, per_minute=rule.per_minute, burst=rule.burst
        )
        assert seen.rate_wait_seconds > 0
        assert seen.rate_last_minute == 59  # ages 1 s to 59 s


REFUSING = QuotaSettings(max_active_runs=2, over_active="refuse", burst=100)


async def _ended(store: Store, seconds: float) -> None:
    run, _ = await store.create_run(new_run(), at(-600))
    await store.transition(run.id, S.SUCCEEDED, expected={S.SUBMITTING}, now=at(-600 + seconds))


def _counting(quotas: QuotaSettings, seen: list[NamespaceUsage]) -> Admit:
    def admit(usage: NamespaceUsage) -> Admission:
        seen.append(usage)
        return decide(usage, quotas, workspace_cap=None, now=NOW)

    return admit


async def test_an_accepted_or_queued_run_does_not_read_the_mean_run_time(store: Store) -> None:
    """Admitted or queued, decide is called once, on a usage without the mean run time."""
    await _ended(store, 100)
    seen: list[NamespaceUsage] = []
    queueing = REFUSING.model_copy(update={"over_active": "queue"})
    for _ in range(3):  # two start, the third waits
        await store.create_run(
            new_run(), NOW, admit=_counting(queueing, seen), needs=usage_needs(queueing)
        )
    assert [u.mean_run_read for u in seen] == [False, False, False]
    assert all(u.mean_run_seconds is None and u.rate_wait_seconds == 0.0 for u in seen)
    assert seen[-1].active == 2


async def test_a_refusal_gets_the_measured_retry_after_in_the_same_transaction(
    store: Store,
) -> None:
    """At its limit under over_active: refuse, decide asks for the mean run time: the store
    reads it and decides again, and the Retry-After is the measured one."""
    await _ended(store, 100)
    await _ended(store, 300)
    for _ in range(2):
        await store.create_run(new_run(), NOW)
    seen: list[NamespaceUsage] = []
    with pytest.raises(QuotaExceeded) as refused:
        await store.create_run(
            new_run(), NOW, admit=_counting(REFUSING, seen), needs=usage_needs(REFUSING)
        )
    assert refused.value.limit == "max_active_runs"
    assert refused.value.retry_after == 200 / 2 != UNMEASURED_WAIT_SECONDS
    assert [(u.mean_run_read, u.mean_run_seconds) for u in seen] == [(False, None), (True, 200)]
    assert seen[0].active == seen[1].active == 2
    assert await store.count_runs("team-a") == 4


async def test_a_rate_refusal_quotes_the_last_minute_without_the_mean(store: Store) -> None:
    """Over the bucket the refusal names the last minute's submissions; it needs no mean."""
    quotas = QuotaSettings(submissions_per_minute=6, burst=2)
    history = [at(s) for s in (-120, -15, -10, -5)]
    for moment in history:
        await store.create_run(new_run(), moment)
    seen: list[NamespaceUsage] = []
    with pytest.raises(QuotaExceeded) as refused:
        await store.create_run(
            new_run(), NOW, admit=_counting(quotas, seen), needs=usage_needs(quotas)
        )
    assert (refused.value.limit, refused.value.usage) == ("submissions_per_minute", 3)
    # A token every 10 s and two in the bucket: with three in the last 15 s, the next fits
    # 5 s from now.
    assert refused.value.retry_after == 5.0
    assert refused.value.retry_after == expected(history, NOW, RateRule(6, 2))[0]
    assert [u.mean_run_read for u in seen] == [False]


async def test_an_admission_under_no_workspace_cap_does_not_count_the_workspace(
    store: Store,
) -> None:
    """workspace_active is counted only when the needs ask (a workspace with a cap); the
    namespace's own counts are read either way."""
    await store.create_run(new_run("team-b"), at(-5))
    await store.create_run(new_run(), at(-4))
    await store.create_run(new_run(state=S.QUEUED), at(-3))
    counted = (await seen_by_admit(store, "team-a", NOW, usage_needs(REFUSING))).usage
    lean = usage_needs(REFUSING, capped=False)
    uncounted = (await seen_by_admit(store, "team-a", NOW, lean)).usage
    assert (counted.active, counted.queued, counted.workspace_active) == (1, 1, 2)
    assert (uncounted.active, uncounted.queued, uncounted.workspace_active) == (1, 1, 0)


async def test_a_promotion_reads_what_still_fits_looks_at_and_no_more(store: Store) -> None:
    """promotion_needs leaves the rate window and the mean run time out, and the workspace
    when it has no cap; still_fits decides from the counts as before."""
    await _ended(store, 100)
    for moment in (at(-3), at(-2)):
        await store.create_run(new_run(), moment)
    queued, _ = await store.create_run(new_run(state=S.QUEUED), at(-1))
    seen: list[NamespaceUsage] = []
    quotas = QuotaSettings(max_active_runs=3)

    def fits(usage: NamespaceUsage) -> bool:
        seen.append(usage)
        return still_fits(quotas, None)(usage)

    promoted = await store.promote_queued(
        queued.id, NOW, owner="r1", fits=fits, message="admitted",
        needs=promotion_needs(quotas, None),
    )  # fmt: skip
    assert promoted is not None
    assert promoted.state is S.SUBMITTING
    (usage,) = seen
    assert (usage.active, usage.queued) == (2, 1)
    assert usage.recent_submissions == ()
    assert usage.rate_wait_seconds is None
    assert (usage.mean_run_read, usage.mean_run_seconds) == (False, None)
    assert usage.workspace_active == 0
    full = promotion_needs(quotas, 5)
    assert (full.workspace_active, full.recent, full.mean_run) == (True, False, False)
