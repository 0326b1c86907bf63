"""Admission rules (pure): the verdict tables, the rate bucket, the queue's promotions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import QuotaExceeded
from gateway.model import NamespaceUsage, RunState
from gateway.runs.admission import Waiting, decide, promotions, rate_wait
from gateway.settings import QuotaSettings

S = RunState
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
QUOTAS = QuotaSettings(max_active_runs=2, max_queued_runs=2, submissions_per_minute=60, burst=3)


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
    """A paused namespace or one at max_active_runs admits nothing; a workspace cap holds."""
    heads = [Waiting("paused", "ws", 1), Waiting("full", "ws", 2), Waiting("free", "other", 3)]
    quotas = {
        "paused": QuotaSettings(paused=True),
        "full": QuotaSettings(max_active_runs=1),
        "free": QuotaSettings(),
    }
    active = {("ws", "full"): 1}
    assert promotions(heads, active, quotas.__getitem__, {}) == [heads[2]]
    assert promotions(heads, active, quotas.__getitem__, {"other": 0}) == []


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
)


@dataclass
class Model:
    """The ledger as admission sees it: each run's namespace and state; times of creation."""

    cap: int
    limit: int = 2
    now: datetime = NOW
    runs: dict[int, tuple[str, RunState]] = field(default_factory=dict)
    created: dict[str, list[datetime]] = field(default_factory=dict)

    def quotas(self, _namespace: str) -> QuotaSettings:
        return QuotaSettings(
            max_active_runs=self.limit, max_queued_runs=3, submissions_per_minute=30, burst=2
        )

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
        )

    def check(self) -> None:
        for namespace in NAMESPACES:
            assert len(self.ids(namespace, S.QUEUED)) <= 3


def _apply(model: Model, op: str, arg: object, queued: set[int], admitted: list[int]) -> None:
    if op == "submit":
        namespace = str(arg)
        before = model.usage(namespace)
        try:
            verdict = decide(
                before, model.quotas(namespace), workspace_cap=model.cap, now=model.now
            )
        except QuotaExceeded:
            return
        if verdict.state is S.SUBMITTING:
            assert before.active < model.limit
            assert before.workspace_active < model.cap
        run_id = len(model.runs) + 1
        model.runs[run_id] = (namespace, S.RUNNING if verdict.state is S.SUBMITTING else S.QUEUED)
        model.created.setdefault(namespace, []).append(model.now)
        if verdict.state is S.QUEUED:
            queued.add(run_id)
    elif op in ("complete", "cancel"):
        wanted = S.RUNNING if op == "complete" else S.QUEUED
        candidates = model.ids(None, wanted)
        if candidates:
            run_id = candidates[int(str(arg)) % len(candidates)]
            model.runs[run_id] = (model.runs[run_id][0], S.CANCELED)
            queued.discard(run_id)
    elif op == "tick":
        heads = [Waiting(model.runs[i][0], "ws", i) for i in model.ids(None, S.QUEUED)]
        active = {("ws", ns): len(model.ids(ns, S.RUNNING)) for ns in NAMESPACES}
        for pick in promotions(heads, active, model.quotas, {"ws": model.cap}):
            assert model.runs[pick.run_id][1] is S.QUEUED  # never admitted twice
            assert len(model.ids(pick.namespace, S.RUNNING)) < model.limit
            assert len(model.ids(None, S.RUNNING)) < model.cap
            model.runs[pick.run_id] = (pick.namespace, S.RUNNING)
            queued.discard(pick.run_id)
            admitted.append(pick.run_id)
    elif op == "policy":
        model.limit = int(str(arg))
    elif op == "wait":
        model.now += timedelta(seconds=int(str(arg)) * 2)
    # "restart": admission keeps no memory of its own; the model's ledger is all there is.


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=80), st.integers(1, 6))
def test_no_limit_is_exceeded_and_no_queued_run_is_lost(
    ops: list[tuple[str, object]], cap: int
) -> None:
    """In any sequence of submits, completions, cancels, restarts and policy changes, every
    admission happens under the limits, the queue stays bounded, and every queued run is
    still queued until it is admitted (once) or cancelled."""
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
