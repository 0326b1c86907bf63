"""Admission: whether a new run starts, waits QUEUED or is refused, and which queued runs go.

Pure functions of a namespace's usage, its policy and the time; no I/O and no loop, so the
store can call ``decide`` on its own thread inside ``create_run``'s transaction (the
``admit`` callback), and the queue task can call ``promotions`` with what it read.

A new run is, in this order:
- refused while the namespace drains;
- refused over the rate: a token bucket of ``burst`` tokens refilled at
  ``submissions_per_minute``, checked as the bucket's conformance test over the creation times
  of the namespace's latest runs (the ledger's, so every replica sees the same bucket);
- made to wait while the namespace is paused, at or over its ``run_hours_per_day`` (the
  rolling day's run time, ``usage.run_seconds``), at its ``max_active_runs``, its workspace at
  its cap, or runs of the namespace already wait (oldest first: a new run never jumps the
  queue); waiting means QUEUED, or a refusal when the policy for that limit is ``refuse``
  (``over_run_hours`` for the budget, ``over_active`` for the rest), or when the queue holds
  ``max_queued_runs`` already.
Every refusal is a ``QuotaExceeded`` naming the limit, its value and the usage, with a
Retry-After computed from what frees the limit. Over the budget that needs each run's span,
which only the refusal pays for: ``decide`` takes them when the caller has read them. A
namespace without a budget does not pay for the day's run time at all (``usage_needs``).

What a submission that is accepted reads is kept to the counts: the store checks the bucket
itself (``UsageNeeds.rate``: the same arithmetic as ``rate_wait``, in SQL) and leaves the mean
run time out, which only a refusal's Retry-After uses; ``slot_wait`` asks for it
(``UsageWanted``) and the store calls ``decide`` again with it, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import QuotaExceeded
from gateway.model import NamespaceUsage, RunState
from gateway.runs.budget import Span, budget_wait
from gateway.settings import QuotaSettings
from gateway.store.base import Admission, RateRule, UsageNeeds, UsageWanted

# What Retry-After says when nothing measured tells when a limit frees: no run of the
# namespace ended in the last day, or an operator must act (paused, draining).
UNMEASURED_WAIT_SECONDS = 30.0


def rate_wait(recent: Sequence[datetime], now: datetime, *, per_minute: float, burst: int) -> float:
    """Seconds from ``now`` until one more submission fits the bucket; 0 when it fits now.

    ``recent`` are the creation times of the namespace's latest runs, newest first. With i of
    them at or after ``t``, one more at ``now + w`` conforms when i + 1 <= burst + rate * (now
    + w - t) for every such ``t``.
    """
    rate = per_minute / 60.0
    wait = 0.0
    for count, moment in enumerate(recent, start=1):
        if count < burst:
            continue
        wait = max(wait, (count + 1 - burst) / rate - (now - moment).total_seconds())
    return wait


def usage_needs(quotas: QuotaSettings, *, capped: bool = True) -> UsageNeeds:
    """What ``decide`` reads of the usage under ``quotas``: the day's run time only with a
    ``run_hours_per_day`` budget (without one, ``over_budget`` never looks at it), the bucket
    checked by the store, the mean run time only once a refusal asks for it, and the
    workspace's active runs only when it is ``capped`` (``workspace_cap`` not None)."""
    return UsageNeeds(
        run_hours=quotas.run_hours_per_day is not None,
        mean_run=False,
        rate=RateRule(per_minute=quotas.submissions_per_minute, burst=quotas.burst),
        workspace_active=capped,
    )


def slot_wait(usage: NamespaceUsage, quotas: QuotaSettings) -> float:
    """An estimate of the time until one of the namespace's active runs ends.

    Raises ``UsageWanted`` when the store left the mean run time out: inside ``create_run``
    the store then reads it and decides again."""
    if not usage.mean_run_read:
        raise UsageWanted("mean_run_seconds")
    if usage.mean_run_seconds is None:
        return UNMEASURED_WAIT_SECONDS
    return max(1.0, usage.mean_run_seconds / max(1, quotas.max_active_runs))


def _rate_usage(recent: Sequence[datetime], now: datetime) -> int:
    return sum(1 for moment in recent if (now - moment).total_seconds() < 60)


def _rate_verdict(usage: NamespaceUsage, quotas: QuotaSettings, now: datetime) -> tuple[float, int]:
    """The bucket's wait and, when it is over, the last minute's submissions: as the store
    checked them, or from the rate window it handed over."""
    if usage.rate_wait_seconds is not None:
        return usage.rate_wait_seconds, usage.rate_last_minute
    wait = rate_wait(
        usage.recent_submissions, now, per_minute=quotas.submissions_per_minute, burst=quotas.burst
    )
    return wait, _rate_usage(usage.recent_submissions, now) if wait > 0 else 0


def over_budget(run_seconds: float, quotas: QuotaSettings) -> bool:
    """Whether the namespace's rolling day of run time has reached its run_hours_per_day."""
    budget = quotas.run_hours_per_day
    return budget is not None and run_seconds >= budget * 3600


def run_hours_refusal(
    namespace: str, quotas: QuotaSettings, run_seconds: float, wait: float
) -> QuotaExceeded:
    """The 429 of a namespace over its run-hours budget, to retry after ``wait`` seconds."""
    used = run_hours(run_seconds)
    return QuotaExceeded(
        f"namespace '{namespace}' has used {used:g} of its run_hours_per_day "
        f"{quotas.run_hours_per_day:g} in the last 24 h and its policy refuses rather than "
        f"queues (over_run_hours: refuse); retry after {wait:.0f} s, when enough run time "
        "has left the window",
        namespace=namespace,
        retry_after=wait,
        limit="run_hours_per_day",
        value=quotas.run_hours_per_day,
        usage=used,
    )


def run_hours(seconds: float) -> float:
    """Run time as the hours quotas speak in, to the second's precision shown to people."""
    return round(seconds / 3600, 3)


def run_hours_wait(
    spans: Sequence[Span], quotas: QuotaSettings, now: datetime, *, otherwise: float
) -> float:
    """When the budget frees for one more run; ``otherwise`` if only an active run's end can."""
    assert quotas.run_hours_per_day is not None
    wait = budget_wait(spans, now, quotas.run_hours_per_day * 3600)
    return otherwise if wait is None else wait


def wait_reason(
    usage: NamespaceUsage, quotas: QuotaSettings, workspace_cap: int | None
) -> tuple[str, object, object] | None:
    """Why a new run of the namespace would wait: (limit, its value, usage); None: it starts."""
    if quotas.paused:
        return ("paused", True, usage.queued)
    if over_budget(usage.run_seconds, quotas):
        return ("run_hours_per_day", quotas.run_hours_per_day, run_hours(usage.run_seconds))
    if usage.active >= quotas.max_active_runs:
        return ("max_active_runs", quotas.max_active_runs, usage.active)
    if workspace_cap is not None and usage.workspace_active >= workspace_cap:
        return ("workspace.max_active_runs", workspace_cap, usage.workspace_active)
    if usage.queued > 0:
        return ("queue", "oldest first", usage.queued)
    return None


def _refuse_at_the_door(usage: NamespaceUsage, quotas: QuotaSettings, now: datetime) -> None:
    """The refusals that come before any waiting: draining, then the rate."""
    namespace = usage.namespace
    if quotas.draining:
        raise QuotaExceeded(
            f"namespace '{namespace}' is draining: it takes no new runs; its active runs "
            "finish. Ask the operators when it reopens",
            namespace=namespace,
            retry_after=UNMEASURED_WAIT_SECONDS,
            limit="draining",
            value=True,
            usage=usage.active,
        )
    wait, recent = _rate_verdict(usage, quotas, now)
    if wait > 0:
        raise QuotaExceeded(
            f"namespace '{namespace}' is over submissions_per_minute "
            f"{quotas.submissions_per_minute:g} (burst {quotas.burst}; {recent} in the last "
            f"minute); retry after {wait:.1f} s",
            namespace=namespace,
            retry_after=wait,
            limit="submissions_per_minute",
            value=quotas.submissions_per_minute,
            usage=recent,
        )


def decide(
    usage: NamespaceUsage,
    quotas: QuotaSettings,
    *,
    workspace_cap: int | None,
    now: datetime,
    spans: Sequence[Span] | None = None,
) -> Admission:
    """Admit (SUBMITTING), queue (QUEUED, with why) or refuse (QuotaExceeded) a new run.

    ``spans``, the namespace's run spans of the day, make an over-budget refusal's
    Retry-After exact; without them it is an estimate the caller should refine.
    """
    _refuse_at_the_door(usage, quotas, now)
    namespace = usage.namespace
    reason = wait_reason(usage, quotas, workspace_cap)
    if reason is None:
        return Admission(RunState.SUBMITTING, "accepted")
    limit, value, used = reason
    if limit == "run_hours_per_day" and quotas.run_hours_policy() == "refuse":
        wait = UNMEASURED_WAIT_SECONDS
        if spans is not None:
            wait = run_hours_wait(spans, quotas, now, otherwise=slot_wait(usage, quotas))
        raise run_hours_refusal(namespace, quotas, usage.run_seconds, wait)
    if limit != "run_hours_per_day" and quotas.over_active == "refuse":
        retry = _retry(limit, usage, quotas)
        raise QuotaExceeded(
            f"namespace '{namespace}' is at {limit} ({value}; usage {used}) and its policy "
            "refuses rather than queues (over_active: refuse); retry later",
            namespace=namespace,
            retry_after=retry,
            limit=limit,
            value=value,
            usage=used,
        )
    if usage.queued >= quotas.max_queued_runs:
        retry = _retry(limit, usage, quotas)
        raise QuotaExceeded(
            f"namespace '{namespace}' has max_queued_runs {quotas.max_queued_runs} runs "
            f"waiting already ({limit}: {value}); retry after {retry:.0f} s",
            namespace=namespace,
            retry_after=retry,
            limit="max_queued_runs",
            value=quotas.max_queued_runs,
            usage=usage.queued,
        )
    return Admission(RunState.QUEUED, f"queued: {limit} {value} (usage {used})")


def _retry(limit: str, usage: NamespaceUsage, quotas: QuotaSettings) -> float:
    """A refusal's Retry-After for a run that would wait on ``limit``; only refusals ask, so a
    run that queues never needs the mean run time."""
    return UNMEASURED_WAIT_SECONDS if limit == "paused" else slot_wait(usage, quotas)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A queued run as the queue task sees it: whose, on which workspace, its ledger id."""

    namespace: str
    workspace: str
    run_id: int


def admissible(
    queued: Mapping[tuple[str, str], int],
    active: Mapping[tuple[str, str], int],
    quotas: Callable[[str], QuotaSettings],
    caps: Mapping[str, int | None],
) -> set[str]:
    """The namespaces with runs queued that could admit one now, from counts alone: not
    paused, under ``max_active_runs``, on a workspace under its cap. ``promotions`` needs the
    heads of these only; with none, a pass reads nothing more."""
    per_namespace: dict[str, int] = {}
    per_workspace: dict[str, int] = {}
    for (workspace, namespace), count in active.items():
        per_namespace[namespace] = per_namespace.get(namespace, 0) + count
        per_workspace[workspace] = per_workspace.get(workspace, 0) + count
    found: set[str] = set()
    for workspace, namespace in queued:
        policy, cap = quotas(namespace), caps.get(workspace)
        if policy.paused or per_namespace.get(namespace, 0) >= policy.max_active_runs:
            continue
        if cap is None or per_workspace.get(workspace, 0) < cap:
            found.add(namespace)
    return found


def promotion_needs(quotas: QuotaSettings, cap: int | None) -> UsageNeeds:
    """What ``still_fits`` reads: the counts, the workspace's active runs when it has a cap,
    the day's run time under a budget; never the rate window or the mean run time."""
    return UsageNeeds(
        run_hours=quotas.run_hours_per_day is not None,
        mean_run=False,
        recent=False,
        workspace_active=cap is not None,
    )


def still_fits(quotas: QuotaSettings, cap: int | None) -> Callable[[NamespaceUsage], bool]:
    """What a promotion re-checks in its own transaction (``Store.promote_queued``), with the
    namespace's usage at that instant: another replica may have admitted since the pass read
    its counts. Not paused, under ``max_active_runs`` and its run-hours budget, and the
    workspace under ``cap``."""

    def fits(usage: NamespaceUsage) -> bool:
        return (
            not quotas.paused
            and usage.active < quotas.max_active_runs
            and (cap is None or usage.workspace_active < cap)
            and not over_budget(usage.run_seconds, quotas)
        )

    return fits


def promotions(
    heads: Sequence[Waiting],
    active: Mapping[tuple[str, str], int],
    quotas: Callable[[str], QuotaSettings],
    caps: Mapping[str, int | None],
    spent: Collection[str] = (),
) -> list[Waiting]:
    """Which queued runs to admit now, in order.

    ``heads`` are the oldest queued runs of each namespace (oldest first within one);
    ``active`` the active runs per (workspace, namespace); ``caps`` each workspace's cap (None
    or absent: none). Within a namespace the oldest goes first; across namespaces the next
    slot goes to the namespace with the fewest active runs for its ``share``; no namespace
    passes its ``max_active_runs`` or goes while paused or ``spent`` (at its run-hours
    budget), and no workspace passes its cap.
    """
    per_namespace: dict[str, int] = {}
    per_workspace: dict[str, int] = {}
    for (workspace, namespace), count in active.items():
        per_namespace[namespace] = per_namespace.get(namespace, 0) + count
        per_workspace[workspace] = per_workspace.get(workspace, 0) + count
    queues: dict[str, list[Waiting]] = {}
    for run in sorted(heads, key=lambda w: w.run_id):
        queues.setdefault(run.namespace, []).append(run)
    policy = {namespace: quotas(namespace) for namespace in queues}
    chosen: list[Waiting] = []
    while True:
        best: tuple[float, int, str] | None = None
        for namespace, queue in queues.items():
            if not queue or policy[namespace].paused or namespace in spent:
                continue
            used = per_namespace.get(namespace, 0)
            cap = caps.get(queue[0].workspace)
            if used >= policy[namespace].max_active_runs or (
                cap is not None and per_workspace.get(queue[0].workspace, 0) >= cap
            ):
                continue
            key = (used / policy[namespace].share, queue[0].run_id, namespace)
            best = key if best is None or key < best else best
        if best is None:
            return chosen
        run = queues[best[2]].pop(0)
        per_namespace[run.namespace] = per_namespace.get(run.namespace, 0) + 1
        per_workspace[run.workspace] = per_workspace.get(run.workspace, 0) + 1
        chosen.append(run)
