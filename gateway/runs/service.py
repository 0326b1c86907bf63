"""The run service: accept, submit, read, list and cancel runs, for the API.

A submission is written to the ledger (SUBMITTING) before Databricks is called, and the
ledger id becomes the ``idempotency_token``, so a crash or a retry at any point can neither
lose an accepted request nor create a second Databricks run for it. The caller is answered as
soon as Databricks returned a run id, or after ``inline_submit_seconds`` with the run still
SUBMITTING; the poller then keeps submitting it, with the same token, until the deadline.

An idempotent replay (the namespace's Idempotency-Key again, with the same body) is answered
from the ledger before any identity is asked for, so a retry gets its answer even while
Kubernetes or a token endpoint is away: by a read of its own when the namespace's identity
would have to be resolved, and by the insert's own idempotency check (the lookup and the
insert in one ledger job, not two) when the resolver holds that identity fresh. Everything remote
goes through the ``Submitter`` and every write through the ``RunLedger``; this module only
reads the store itself.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from gateway.errors import InvalidRequest, NotFound, QuotaExceeded, RunRejected
from gateway.identity.resolver import ResolvedIdentity
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState, request_fingerprint
from gateway.runs.admission import decide, usage_needs
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.guardrails import check_guardrails
from gateway.runs.ledger import RunLedger
from gateway.runs.quota import budget_refusal
from gateway.runs.specs import prepare_spec
from gateway.runs.submitter import Submitter
from gateway.runs.types import Clock, RunPage, SubmitOutcome, SubmitRequest, utcnow
from gateway.settings import Settings
from gateway.store.base import NewRun, Store
from gateway.webhooks.destination import check_callback_url
from gateway.webhooks.guard import Guard


def _encode_cursor(run_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{run_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "before":
            raise ValueError(prefix)
        return int(value)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidRequest(
            "cursor is not one this API returned; pass next_cursor from the previous page",
            field="cursor",
        ) from exc


def _fingerprint(request: SubmitRequest) -> str:
    """What tells a retry of ``request`` from a different request with the same key."""
    return request_fingerprint(
        {
            "spec": dict(request.spec),
            "callback_url": request.callback_url,
            "labels": dict(request.labels),
            "identity": dict(request.identity),
        }
    )


class RunsService:
    """The concrete ``RunService``."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: RunLedger,
        submitter: Submitter,
        settings: Settings,
        metrics: Metrics,
        clock: Clock = utcnow,
        inline_submit_seconds: float = 10.0,
        caps: WorkspaceCaps | None = None,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._submitter = submitter
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._inline_submit_seconds = inline_submit_seconds
        self._caps = caps or WorkspaceCaps(lambda: settings.workspaces, clock=clock)
        self._webhook_guard = Guard.of(
            settings.webhooks.allow_networks, allow_http=settings.webhooks.allow_http
        )

    async def submit(
        self, namespace: str, request: SubmitRequest, *, idempotency_key: str | None
    ) -> SubmitOutcome:
        if request.callback_url is not None:
            check_callback_url(
                namespace, request.callback_url, self._settings.tenants.webhooks(namespace),
                self._webhook_guard,
            )  # fmt: skip
        fingerprint = _fingerprint(request)
        # A held identity asks no one, so nothing can be away: the insert's own idempotency
        # check then answers a replay, and a keyed submit needs no ledger read of its own.
        identity = self._submitter.held_identity_for(namespace, request.identity)
        if idempotency_key is not None and identity is None:
            replay = await self._replay(namespace, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        # Resolving first refuses an unconfigured namespace before anything is stored.
        identity = identity or await self._submitter.identity_for(namespace, request.identity)
        new = await self._new_or_replay(namespace, request, identity, fingerprint, idempotency_key)
        if isinstance(new, SubmitOutcome):
            return new
        run, created = await self._accept(new)
        if not created:
            return self._replayed(run)
        self._metrics.observe_submission(namespace, "accepted")
        if run.state is RunState.QUEUED:
            return SubmitOutcome(run=run, created=True)  # the admission queue takes it on
        run = await self._submitter.submit_remote(
            run, identity, deadline=self._inline_submit_seconds
        )
        if run.state is RunState.REJECTED:
            # Refused for good: a 4xx that carries the stored run's id and the reason.
            raise RunRejected(run.state_message or "rejected", namespace=namespace, run_id=run.id)
        return SubmitOutcome(run=run, created=True)

    async def _new_or_replay(
        self,
        namespace: str,
        request: SubmitRequest,
        identity: ResolvedIdentity,
        fingerprint: str,
        key: str | None,
    ) -> NewRun | SubmitOutcome:
        """The run to insert, or the replay of the one a key already names that a check
        changed since (the tenant's guardrails reloaded) would now refuse. A refused keyed
        request is looked up here even if it was before resolving: a second read on a 4xx
        path, rather than a flag carried to remember the first."""
        try:
            return self._new_run(namespace, request, identity, fingerprint, key)
        except InvalidRequest:
            if key is None:
                raise
            replay = await self._replay(namespace, key, fingerprint)
            if replay is None:
                raise
            return replay

    async def _accept(self, new: NewRun) -> tuple[RunRecord, bool]:
        """Insert ``new`` with admission deciding, in the insert's transaction, how it starts."""
        quotas = self._settings.tenants.quotas(new.namespace)
        cap = self._caps.cap(new.workspace)
        now = self._clock()
        try:
            return await self._ledger.accept(
                new,
                admit=lambda usage: decide(usage, quotas, workspace_cap=cap, now=now),
                needs=usage_needs(quotas, capped=cap is not None),
            )
        except QuotaExceeded as exc:
            self._metrics.observe_quota_refusal(new.namespace, exc.limit)
            if exc.limit == "run_hours_per_day":
                raise await budget_refusal(self._store, new.namespace, quotas, now) from None
            raise

    async def get(self, namespace: str, run_id: int) -> RunRecord:
        run = await self._store.get_run(namespace, run_id, with_history=True)
        if run is None:
            raise NotFound(f"run {run_id} does not exist in namespace '{namespace}'")
        return run

    async def list(
        self,
        namespace: str,
        *,
        states: frozenset[RunState] | None,
        limit: int,
        cursor: str | None,
    ) -> RunPage:
        before = _decode_cursor(cursor) if cursor else None
        runs = await self._store.list_runs(
            namespace, states=states, limit=limit + 1, before_id=before
        )
        more = len(runs) > limit
        runs = runs[:limit]
        return RunPage(runs=runs, next_cursor=_encode_cursor(runs[-1].id) if more else None)

    async def cancel(self, namespace: str, run_id: int) -> RunRecord:
        run = await self._ledger.request_cancel(namespace, run_id)
        if run is None:
            raise NotFound(f"run {run_id} does not exist in namespace '{namespace}'")
        if run.terminal:
            return run
        if run.state is RunState.QUEUED:
            # Never sent to Databricks: nothing remote to stop.
            done = await self._ledger.finish(run, RunState.CANCELED, "canceled before submission")
            return done or await self.get(namespace, run_id)
        if run.databricks_run_id is not None:
            await self._submitter.cancel_remote(run)
        # A SUBMITTING run is cancelled by the poller once its submission is confirmed:
        # cancelling before that could leave a run Databricks was about to create.
        return await self.get(namespace, run_id)

    async def _replay(self, namespace: str, key: str, fingerprint: str) -> SubmitOutcome | None:
        """The answer to a retry of a request the ledger already holds; None otherwise.

        A different body under the same key is not answered here: it takes the path of a new
        request, whose checks come first, and ``create_run`` refuses it with Conflict.
        """
        found = await self._store.get_run_by_idempotency_key(namespace, key)
        if found is None or found.request_fingerprint != fingerprint:
            return None
        return self._replayed(found)

    def _replayed(self, run: RunRecord) -> SubmitOutcome:
        self._metrics.observe_submission(run.namespace, "replayed")
        return SubmitOutcome(run=run, created=False)

    def _new_run(
        self,
        namespace: str,
        request: SubmitRequest,
        identity: ResolvedIdentity,
        fingerprint: str,
        idempotency_key: str | None,
    ) -> NewRun:
        spec = prepare_spec(request.spec, self._settings.tenants.quotas(namespace))
        check_guardrails(spec, self._settings.tenants.guardrails(namespace))
        return NewRun(
            namespace=namespace,
            state=RunState.SUBMITTING,
            spec=spec,
            request_fingerprint=fingerprint,
            workspace=identity.workspace_name,
            databricks_host=identity.workspace.host,
            idempotency_key=idempotency_key,
            callback_url=request.callback_url,
            labels=dict(request.labels),
            # What the run runs as: the request's choice, or the ServiceAccount or Secret the
            # namespace's identity came from, so the run is followed by the same principal.
            identity_ref=dict(request.identity or identity.pin),
            principal=identity.principal.record() if identity.principal else {},
            # Keeps the poller away while this request submits inline.
            next_poll_at=self._clock() + timedelta(seconds=self._inline_submit_seconds + 5),
        )
