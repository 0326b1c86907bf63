"""Admission rules (pure): the verdict tables, the rate bucket, the queue's promotions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import QuotaExceeded
from gateway.model import NamespaceUsage, RunState
from gateway.runs.admission import (
    Waiting,
    admissible,
    decide,
    promotions,
    rate_wait,
    usage_needs,
)
from gateway.runs.budget import Span, used_seconds
from gateway.settings import QuotaSettings
from gateway.store.base import UsageWanted

S = RunState
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
QUOTAS = QuotaSettings(max_active_runs=2, max_queued_runs=2, submissions_per_minute=60, burst=3)
BUDGET = QUOTAS.model_copy(update={"run_hours_per_day": 2.0})


def ago(*seconds: float) -> tuple[datetime, ...]:
    return tuple(NOW - timedelta(seconds=s) for s in seconds)


def usage(active: int = 0, queued: int = 0, **more: object) -> NamespaceUsage:
    return NamespaceUsage("team-a", active=active, queued=queued, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("used", "quotas", "cap", "state", "why"),
    [
        (usage(), QUOTAS, None, S.SUBMITTING, "accepted"),
        (usage(active=2), QUOTAS, None, S.QUEUED, "max_active_runs 2"),
        (usage(active=1, queued=1), QUOTAS, None, S.QUEUED, "queue"),
        (usage(workspace_active=5), QUOTAS, 5, S.QUEUED, "workspace.max_active_runs 5"),
        (usage(), QUOTAS.model_copy(update={"paused": True}), None, S.QUEUED, "paused"),
        (usage(run_seconds=7200.0), BUDGET, None, S.QUEUED, "run_hours_per_day 2"),
        (usage(run_seconds=7199.0), BUDGET, None, S.SUBMITTING, "accepted"),
    ],
)
def test_a_new_run_starts_or_waits(
    used: NamespaceUsage, quotas: QuotaSettings, cap: int | None, state: RunState, why: str
) -> None:
    """Under every limit a run starts; at one it waits QUEUED and its message says which."""
    verdict = decide(used, quotas, workspace_cap=cap, now=NOW)
    assert verdict.state is state
    assert why in verdict.message


@pytest.mark.parametrize(
    ("used", "quotas", "limit", "retry_after"),
    [
        (usage(active=2, queued=2), QUOTAS, "max_queued_runs", 30.0),
        (usage(active=2, queued=2, mean_run_seconds=600.0), QUOTAS, "max_queued_runs", 300.0),
        (
            usage(active=2),
            QUOTAS.model_copy(update={"over_active": "refuse"}),
            "max_active_runs",
            30.0,
        ),
        (usage(), QUOTAS.model_copy(update={"draining": True}), "draining", 30.0),
        (usage(recent_submissions=ago(0, 0, 0)), QUOTAS, "submissions_per_minute", 1.0),
        (usage(recent_submissions=ago(0.5, 0.5, 0.5)), QUOTAS, "submissions_per_minute", 0.5),
    ],
)
def test_a_refusal_names_the_limit_and_when_to_retry(
    used: NamespaceUsage, quotas: QuotaSettings, limit: str, retry_after: float
) -> None:
    """Each refusal is QuotaExceeded naming its limit with a Retry-After computed for it."""
    with pytest.raises(QuotaExceeded) as caught:
        decide(used, quotas, workspace_cap=None, now=NOW)
    assert caught.value.limit == limit
    assert caught.value.retry_after == pytest.approx(retry_after)
    assert limit in caught.value.message


def test_over_the_budget_a_refusing_policy_answers_when_it_frees() -> None:
    """over_run_hours: refuse gives 429 run_hours_per_day, its Retry-After from the spans: a
    run of 2 h that ended 1 h ago leaves the window from 22 h on, and 1 s more must go."""
    refusing = BUDGET.model_copy(update={"over_run_hours": "refuse"})
    spans = [(NOW - timedelta(hours=3), NOW - timedelta(hours=1))]
    with pytest.raises(QuotaExceeded) as caught:
        decide(usage(run_seconds=7200.0), refusing, workspace_cap=None, now=NOW, spans=spans)
    assert (caught.value.limit, caught.value.value, caught.value.usage) == (
        "run_hours_per_day",
        2.0,
        2.0,
    )
    assert caught.value.retry_after == pytest.approx(21 * 3600 + 1)
    assert "run_hours_per_day" in caught.value.message


def test_the_budget_policy_follows_over_active_unless_set() -> None:
    """Without over_run_hours, over_active: refuse refuses over the budget too."""
    refusing = BUDGET.model_copy(update={"over_active": "refuse"})
    with pytest.raises(QuotaExceeded, match="run_hours_per_day"):
        decide(usage(run_seconds=9000.0), refusing, workspace_cap=None, now=NOW)
    queueing = refusing.model_copy(update={"over_run_hours": "queue"})
    assert decide(usage(run_seconds=9000.0), queueing, workspace_cap=None, now=NOW).state is (
        S.QUEUED
    )


def test_a_retry_after_the_rate_wait_is_admitted() -> None:
    """Retrying exactly Retry-After later finds the bucket holding a token again."""
    recent = ago(0.2, 0.4, 0.6)
    with pytest.raises(QuotaExceeded) as caught:
        decide(usage(recent_submissions=recent), QUOTAS, workspace_cap=None, now=NOW)
    later = NOW + timedelta(seconds=caught.value.retry_after)
    assert decide(usage(recent_submissions=recent), QUOTAS, workspace_cap=None, now=later).state


@pytest.mark.parametrize(
    ("recent", "wait"),
    [((), 0.0), (ago(0, 0), 0.0), (ago(0, 0, 0), 1.0), (ago(0, 0, 0, 10), 1.0), (ago(5) * 3, 0)],
)
def test_rate_wait_is_the_token_bucket(recent: tuple[datetime, ...], wait: float) -> None:
    """burst 3 at 60 a minute: the fourth within a second waits for the next token."""
    assert rate_wait(recent, NOW, per_minute=60, burst=3) == pytest.approx(wait)


def test_promotions_are_oldest_first_and_fair_by_share() -> None:
    """The next slot goes to the namespace with fewest active runs for its share, oldest first."""
    heads = [Waiting("big", "ws", i) for i in range(1, 20)] + [
        Waiting("small", "ws", 100),
        Waiting("small", "ws", 101),
    ]
    shares = {"big": QuotaSettings(max_active_runs=50, share=3), "small": QuotaSettings()}
    chosen = promotions(heads, {}, shares.__getitem__, {"ws": 8})
    assert [w.namespace for w in chosen].count("big") == 6
    assert [w.run_id for w in chosen if w.namespace == "big"] == [1, 2, 3, 4, 5, 6]


def test_promotions_skip_paused_and_full_namespaces() -> None:
    """A paused namespace, one at max_active_runs or at its run-hours budget admits nothing;
    a workspace cap holds."""
    heads = [Waiting("paused", "ws", 1), Waiting("full", "ws", 2), Waiting("free", "other", 3)]
    quotas = {
        "paused": QuotaSettings(paused=True),
        "full": QuotaSettings(max_active_runs=1),
        "free": QuotaSettings(),
    }
    active = {("ws", "full"): 1}
    assert promotions(heads, active, quotas.__getitem__, {}) == [heads[2]]
    assert promotions(heads, active, quotas.__getitem__, {"other": 0}) == []
    assert promotions(heads, active, quotas.__getitem__, {}, spent={"free"}) == []


def test_admissible_namespaces_are_known_from_counts() -> None:
    """Only a namespace with room under its limit, unpaused, on a workspace with room."""
    quotas = {
        "room": QuotaSettings(max_active_runs=2),
        "full": QuotaSettings(max_active_runs=1),
        "paused": QuotaSettings(paused=True),
        "capped": QuotaSettings(),
    }
    queued = {("ws", "room"): 3, ("ws", "full"): 1, ("ws", "paused"): 1, ("tight", "capped"): 1}
    active = {("ws", "room"): 1, ("ws", "full"): 1, ("tight", "other"): 2}
    caps = {"ws": 10, "tight": 2}
    assert admissible(queued, active, quotas.__getitem__, caps) == {"room"}
    assert admissible(queued, active, quotas.__getitem__, {**caps, "tight": 3}) == {
        "room",
        "capped",
    }


# --- the property: no limit exceeded, no queued run lost or admitted twice --------------------

NAMESPACES = ("a", "b", "c")
OPS = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("complete"), st.integers(0, 50)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("policy"), st.integers(1, 4)),
    st.tuples(st.just("wait"), st.integers(0, 3)),
    # Half a day: run time of the day before leaves the budget's window.
    st.tuples(st.just("wait"), st.just(21_600)),
)


@dataclass
class Model:
    """The ledger as admission sees it: each run's namespace and state; times of creation;
    each started run's span (from admission to its end, None while active)."""

    cap: int
    limit: int = 2
    budget_seconds: float = 4.0
    over_run_hours: str = "queue"
    now: datetime = NOW
    runs: dict[int, tuple[str, RunState]] = field(default_factory=dict)
    created: dict[str, list[datetime]] = field(default_factory=dict)
    spans: dict[int, Span] = field(default_factory=dict)

    def quotas(self, _namespace: str) -> QuotaSettings:
        return QuotaSettings(
            max_active_runs=self.limit, max_queued_runs=3, submissions_per_minute=30, burst=2,
            run_hours_per_day=self.budget_seconds / 3600, over_run_hours=self.over_run_hours,
        )  # fmt: skip

    def namespace_spans(self, namespace: str) -> list[Span]:
        return [span for i, span in self.spans.items() if self.runs[i][0] == namespace]

    def start(self, run_id: int, namespace: str) -> None:
        """Admit a run, checking that its namespace was under every limit just before."""
        assert len(self.ids(namespace, S.RUNNING)) < self.limit
        assert len(self.ids(None, S.RUNNING)) < self.cap
        assert used_seconds(self.namespace_spans(namespace), self.now) < self.budget_seconds
        self.runs[run_id] = (namespace, S.RUNNING)
        self.spans[run_id] = (self.now, None)

    def ids(self, namespace: str | None, state: RunState) -> list[int]:
        return sorted(
            i for i, (ns, st_) in self.runs.items() if st_ is state and namespace in (None, ns)
        )

    def usage(self, namespace: str) -> NamespaceUsage:
        return NamespaceUsage(
            namespace,
            active=len(self.ids(namespace, S.RUNNING)),
            queued=len(self.ids(namespace, S.QUEUED)),
            workspace_active=len(self.ids(None, S.RUNNING)),
            recent_submissions=tuple(reversed(self.created.get(namespace, []))),
            run_seconds=used_seconds(self.namespace_spans(namespace), self.now),
        )

    def check(self) -> None:
        for namespace in NAMESPACES:
            assert len(self.ids(namespace, S.QUEUED)) <= 3


def _apply(model: Model, op: str, arg: object, queued: set[int], admitted: list[int]) -> None:
    if op == "submit":
        _submit(model, str(arg), queued)
    elif op in ("complete", "cancel"):
        wanted = S.RUNNING if op == "complete" else S.QUEUED
        candidates = model.ids(None, wanted)
        if candidates:
            run_id = candidates[int(str(arg)) % len(candidates)]
            model.runs[run_id] = (model.runs[run_id][0], S.CANCELED)
            if run_id in model.spans:
                model.spans[run_id] = (model.spans[run_id][0], model.now)
            queued.discard(run_id)
    elif op == "tick":
        heads = [Waiting(model.runs[i][0], "ws", i) for i in model.ids(None, S.QUEUED)]
        active = {("ws", ns): len(model.ids(ns, S.RUNNING)) for ns in NAMESPACES}
        spent = {ns for ns in NAMESPACES if model.usage(ns).run_seconds >= model.budget_seconds}
        picks = promotions(heads, active, model.quotas, {"ws": model.cap}, spent)
        # What the queue reads heads for must hold every namespace promotions would pick.
        counts = {("ws", h.namespace): 1 for h in heads}
        assert {p.namespace for p in picks} <= admissible(
            counts, active, model.quotas, {"ws": model.cap}
        )
        for pick in picks:
            assert model.runs[pick.run_id][1] is S.QUEUED  # never admitted twice
            model.start(pick.run_id, pick.namespace)
            queued.discard(pick.run_id)
            admitted.append(pick.run_id)
    elif op == "policy":
        model.limit = int(str(arg))
        model.budget_seconds = 2.0 * int(str(arg))
        model.over_run_hours = "refuse" if int(str(arg)) % 2 else "queue"
    elif op == "wait":
        model.now += timedelta(seconds=int(str(arg)) * 2)
    # "restart": admission keeps no memory of its own; the model's ledger is all there is.


def _submit(model: Model, namespace: str, queued: set[int]) -> None:
    before, spans = model.usage(namespace), model.namespace_spans(namespace)
    quotas = model.quotas(namespace)
    try:
        verdict = decide(before, quotas, workspace_cap=model.cap, now=model.now, spans=spans)
    except QuotaExceeded as refused:
        if refused.limit == "run_hours_per_day":
            # The Retry-After is when the budget frees if nothing new starts meanwhile, or an
            # active run's end when nothing else can free it (then one is active).
            later = model.now + timedelta(seconds=refused.retry_after)
            assert used_seconds(spans, later) < model.budget_seconds or before.active > 0
        return
    run_id = len(model.runs) + 1
    model.runs[run_id] = (namespace, S.QUEUED)
    model.created.setdefault(namespace, []).append(model.now)
    if verdict.state is S.SUBMITTING:
        model.start(run_id, namespace)
    else:
        queued.add(run_id)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=20, max_size=80), st.integers(1, 6))
def test_no_limit_is_exceeded_and_no_queued_run_is_lost(
    ops: list[tuple[str, object]], cap: int
) -> None:
    """In any sequence of submits, completions, cancels, restarts and policy changes, every
    admission happens under the limits (the run-hours budget included), the queue stays
    bounded, and every queued run is still queued until it is admitted (once) or cancelled."""
    model = Model(cap=cap)
    queued: set[int] = set()
    admitted: list[int] = []
    for op, arg in ops:
        _apply(model, op, arg, queued, admitted)
        model.check()
        assert set(model.ids(None, S.QUEUED)) == queued
    assert len(admitted) == len(set(admitted))
    for namespace in NAMESPACES:
        times = model.created.get(namespace, [])
        for i, end in enumerate(times):
            for start in times[: i + 1]:
                span = (end - start).total_seconds()
                inside = sum(1 for t in times if start <= t <= end)
                assert inside <= 2 + span * 30 / 60 + 1e-9


def test_only_a_run_hours_budget_needs_the_days_run_time() -> None:
    """Without run_hours_per_day, decide never looks at run_seconds: it is not read."""
    assert usage_needs(QuotaSettings()).run_hours is False
    assert usage_needs(QuotaSettings(run_hours_per_day=2)).run_hours is True
    # Zeroed run time, as the ledger gives it when not read, decides as the real one would.
    busy = NamespaceUsage("team-a", active=0, queued=0, run_seconds=10 * 3600)
    lean = NamespaceUsage("team-a", active=0, queued=0)
    assert decide(busy, QuotaSettings(), workspace_cap=None, now=NOW) == decide(
        lean, QuotaSettings(), workspace_cap=None, now=NOW
    )


def test_only_a_refusal_asks_for_the_mean_run_time() -> None:
    """Left out by the store, the mean run time is asked for (UsageWanted) by the verdicts
    whose Retry-After uses it, and by no other: a run that starts or queues never needs it."""
    lean = {"mean_run_read": False, "rate_wait_seconds": 0.0}
    assert decide(usage(**lean), QUOTAS, workspace_cap=None, now=NOW).state is S.SUBMITTING
    assert decide(usage(active=2, **lean), QUOTAS, workspace_cap=None, now=NOW).state is S.QUEUED
    with pytest.raises(UsageWanted):
        decide(usage(active=2, queued=2, **lean), QUOTAS, workspace_cap=None, now=NOW)
    refusing = QUOTAS.model_copy(update={"over_active": "refuse"})
    with pytest.raises(UsageWanted):
        decide(usage(active=2, **lean), refusing, workspace_cap=None, now=NOW)


def test_the_bucket_the_store_checked_is_the_verdict() -> None:
    """With the store's rate verdict, decide neither looks at recent_submissions nor redoes it."""
    over = usage(rate_wait_seconds=2.5, rate_last_minute=7)
    with pytest.raises(QuotaExceeded) as refused:
        decide(over, QUOTAS, workspace_cap=None, now=NOW)
    assert (refused.value.limit, refused.value.retry_after, refused.value.usage) == (
        "submissions_per_minute",
        2.5,
        7,
    )
    fits = usage(rate_wait_seconds=0.0, recent_submissions=ago(0, 0, 0, 0))
    assert decide(fits, QUOTAS, workspace_cap=None, now=NOW).state is S.SUBMITTING
