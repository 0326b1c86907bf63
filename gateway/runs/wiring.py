"""How the parts of the runs package connect: one ledger and one submitter, shared.

The composition root picks the store, the Jobs client and the identity resolver; ``wire_runs``
builds the rest on them, the same way for the application and for the tests. The request
path (``RunsService``) and the background (``Poller``) share one ``RunLedger``, the one writer
of runs, and one ``Submitter``, the remote half; they meet nowhere else. The background
(poller, admission queue) claims its work under one replica id, ``server.replica_id``, which
the ledger's writes are fenced as.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gateway.databricks.jobs import JobsClient
from gateway.identity.resolver import IdentityResolver
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.leases import Claims
from gateway.runs.ledger import RunLedger
from gateway.runs.poller import Poller
from gateway.runs.queue import Admitter
from gateway.runs.quota import QuotaReport
from gateway.runs.service import RunsService
from gateway.runs.submitter import Submitter
from gateway.runs.types import Clock, utcnow
from gateway.settings import Settings
from gateway.store.base import Store

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Runs:
    ledger: RunLedger
    submitter: Submitter
    service: RunsService
    poller: Poller
    admitter: Admitter
    quota: QuotaReport


def wire_runs(
    *,
    store: Store,
    jobs: JobsClient,
    identities: IdentityResolver,
    settings: Settings,
    metrics: Metrics,
    clock: Clock = utcnow,
    inline_submit_seconds: float | None = None,
    poll_idle_seconds: float = 0.5,
    jitter: Callable[[], float] = random.random,
    lease_seconds: float | None = None,
) -> Runs:
    """The runs package on ``store``; None for ``inline_submit_seconds`` or ``lease_seconds``
    takes the settings'."""
    inline = (
        settings.poller.inline_submit_seconds
        if inline_submit_seconds is None
        else inline_submit_seconds
    )
    lease = settings.store.lease_seconds if lease_seconds is None else lease_seconds
    ledger, claims = _ledger(store, settings, metrics, clock, lease)
    caps = WorkspaceCaps(lambda: settings.workspaces, clock=clock)
    submitter = Submitter(
        store=store,
        ledger=ledger,
        jobs=jobs,
        identities=identities,
        settings=settings.poller,
        metrics=metrics,
        clock=clock,
        cancel_timeout=inline,
        jitter=jitter,
    )
    service = RunsService(
        store=store,
        ledger=ledger,
        submitter=submitter,
        settings=settings,
        metrics=metrics,
        clock=clock,
        inline_submit_seconds=inline,
        caps=caps,
    )
    # A 429 from Databricks on runs/submit lowers the workspace's cap for a while.
    submitter.on_rate_limited.append(lambda run: caps.rate_limited(run.workspace))
    poller = Poller(
        store=store,
        ledger=ledger,
        jobs=jobs,
        submitter=submitter,
        settings=settings.poller,
        metrics=metrics,
        claims=claims,
        clock=clock,
        idle_seconds=poll_idle_seconds,
    )
    admitter, quota = _admission(store, ledger, settings, metrics, clock, poll_idle_seconds, caps,
                                 claims)  # fmt: skip
    return Runs(ledger, submitter, service, poller, admitter, quota)


def _ledger(
    store: Store, settings: Settings, metrics: Metrics, clock: Clock, lease_seconds: float
) -> tuple[RunLedger, Claims]:
    """The one writer of runs, and the replica's claims its writes are fenced as."""
    ledger = RunLedger(
        store,
        metrics,
        clock=clock,
        state_changes=lambda namespace: settings.tenants.webhooks(namespace).state_changes,
        owner=settings.server.replica_id,
    )
    claims = Claims(store, ledger.owner, lease_seconds=lease_seconds, clock=clock)
    log.info("replica_id", replica_id=claims.owner, lease_seconds=lease_seconds)
    return ledger, claims


def _admission(
    store: Store,
    ledger: RunLedger,
    settings: Settings,
    metrics: Metrics,
    clock: Clock,
    idle_seconds: float,
    caps: WorkspaceCaps,
    claims: Claims,
) -> tuple[Admitter, QuotaReport]:
    """The admission queue's task and the quota view, both on the running tenant policy."""
    admitter = Admitter(
        store=store,
        ledger=ledger,
        tenants=lambda: settings.tenants,
        caps=caps,
        metrics=metrics,
        claims=claims,
        clock=clock,
        idle_seconds=idle_seconds,
    )
    quota = QuotaReport(
        store=store,
        tenants=lambda: settings.tenants,
        caps=caps,
        clock=clock,
    )
    return admitter, quota
