"""The run service: accept, submit, read, list and cancel runs.

A submission is written to the ledger (SUBMITTING) before Databricks is called, and the
ledger id becomes the ``idempotency_token``, so a crash or a retry at any point can neither
lose an accepted request nor create a second Databricks run for it. The caller is answered as
soon as Databricks returned a run id, or after ``inline_submit_seconds`` with the run still
SUBMITTING; the poller then keeps submitting it, with the same token, until the deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.databricks.jobs import JobsClient
from gateway.errors import (
    CredentialUnavailable,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRunNotFound,
    InvalidRequest,
    LakegateError,
    NotFound,
)
from gateway.identity.resolver import IdentityOverride, IdentityResolver, ResolvedIdentity
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import (
    RunRecord,
    RunState,
    databricks_idempotency_token,
    request_fingerprint,
)
from gateway.runs.specs import finished_event, prepare_spec
from gateway.runs.types import RunPage, SubmitOutcome, SubmitRequest
from gateway.settings import Settings
from gateway.store.base import NewRun, Store

log = get_logger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def override_of(ref: Mapping[str, str], *, following: bool = False) -> IdentityOverride | None:
    """A run's identity choice as the resolver takes it; None for the namespace's own."""
    if not ref:
        return None
    return IdentityOverride(
        service_account=ref.get("service_account"), secret=ref.get("secret"), following=following
    )


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


class RunsService:
    """The concrete ``RunService``; also the one place that sends a run to Databricks."""

    def __init__(
        self,
        *,
        store: Store,
        jobs: JobsClient,
        identities: IdentityResolver,
        settings: Settings,
        metrics: Metrics,
        clock: Clock = utcnow,
        inline_submit_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._identities = identities
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._inline_submit_seconds = inline_submit_seconds

    # --- the API's operations ---------------------------------------------------------------

    async def submit(
        self, namespace: str, request: SubmitRequest, *, idempotency_key: str | None
    ) -> SubmitOutcome:
        # Resolving first refuses an unconfigured namespace before anything is stored.
        override = override_of(request.identity)
        identity = await self._identities.resolve(namespace, override)
        spec = prepare_spec(request.spec, self._settings.tenants.quotas(namespace))
        fingerprint = request_fingerprint(
            {
                "spec": dict(request.spec),
                "callback_url": request.callback_url,
                "labels": dict(request.labels),
                "identity": dict(request.identity),
            }
        )
        now = self._clock()
        new = NewRun(
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
            # Keeps the poller away while this request submits inline.
            next_poll_at=now + timedelta(seconds=self._inline_submit_seconds + 5),
        )
        run, created = await self._store.create_run(new, now=now)
        if not created:
            self._metrics.submissions.labels(outcome="replayed").inc()
            return SubmitOutcome(run=run, created=False)
        self._metrics.submissions.labels(outcome="accepted").inc()
        run = await self.submit_remote(run, identity, deadline=self._inline_submit_seconds)
        return SubmitOutcome(run=run, created=True)

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
        now = self._clock()
        run = await self._store.request_cancel(namespace, run_id, now=now)
        if run is None:
            raise NotFound(f"run {run_id} does not exist in namespace '{namespace}'")
        if run.terminal:
            return run
        if run.state is RunState.QUEUED:
            # Never sent to Databricks: nothing remote to stop.
            done = await self._finish(run, RunState.CANCELED, "canceled before submission")
            return done or await self.get(namespace, run_id)
        if run.databricks_run_id is not None:
            await self.cancel_remote(run)
        # A SUBMITTING run is cancelled by the poller once its submission is confirmed:
        # cancelling before that could leave a run Databricks was about to create.
        return await self.get(namespace, run_id)

    # --- shared with the poller -------------------------------------------------------------

    async def submit_remote(
        self,
        run: RunRecord,
        identity: ResolvedIdentity | None = None,
        *,
        deadline: float,
    ) -> RunRecord:
        """Send a SUBMITTING run to Databricks once; record what came of it."""
        now = self._clock()
        try:
            identity = identity or await self.identity_of(run)
            token = databricks_idempotency_token(self._store.installation_id, run.id)
            async with asyncio.timeout(deadline):
                remote_id = await self._jobs.submit(
                    identity.workspace, identity.credential, run.spec, idempotency_token=token
                )
        except (DatabricksInvalidRequest, DatabricksPermissionDenied) as exc:
            self._metrics.submissions.labels(outcome="rejected").inc()
            rejected = await self._finish(
                run, RunState.REJECTED, f"Databricks refused the run: {exc.message}"
            )
            return rejected or await self._reload(run)
        except (TimeoutError, LakegateError) as exc:
            return await self._submit_later(run, now, exc)
        self._metrics.submissions.labels(outcome="submitted").inc()
        moved = await self._store.transition(
            run.id,
            RunState.PENDING,
            expected=frozenset({RunState.SUBMITTING}),
            now=self._clock(),
            message="submitted to Databricks",
            databricks_run_id=remote_id,
            databricks_host=identity.workspace.host,
            next_poll_at=self._clock() + timedelta(seconds=self._first_poll_delay()),
        )
        if moved is not None:
            self._metrics.transitions.labels(state=RunState.PENDING.value).inc()
            log.info("run_submitted", run_id=run.id, namespace=run.namespace, remote_id=remote_id)
        return moved or await self._reload(run)

    async def cancel_remote(self, run: RunRecord) -> None:
        """Ask Databricks to cancel; failures are left for the poller to try again."""
        if run.databricks_run_id is None:
            return
        try:
            identity = await self.identity_of(run)
            async with asyncio.timeout(self._inline_submit_seconds):
                await self._jobs.cancel(
                    identity.workspace, identity.credential, run.databricks_run_id
                )
        except (TimeoutError, LakegateError) as exc:
            log.warning("cancel_deferred", run_id=run.id, namespace=run.namespace, reason=str(exc))

    async def remote_run(
        self, run: RunRecord, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Databricks' runs/get answer for ``run``, whole, asked with the run's own identity.

        For the Databricks-compatible facade, which passes every field on; the poller reads
        runs through ``JobsClient.get`` instead.
        """
        if run.databricks_run_id is None:
            raise NotFound(f"run {run.id} has not reached Databricks")
        identity = await self.identity_of(run)
        return await self._jobs.get_payload(
            identity.workspace, identity.credential, run.databricks_run_id, params=params
        )

    async def remote_output(
        self, namespace: str, task_run_id: int, *, run: RunRecord | None = None
    ) -> dict[str, Any]:
        """Databricks' runs/get-output for a task run, asked with the namespace's identity.

        With ``run`` (the ledger run the task belongs to) the identity is the one that run
        was submitted under. Without it, the task run must belong to one of the namespace's
        runs (its ``metadata.job_run_id``): another namespace's task run is no run at all,
        whatever Databricks' ACLs would let the namespace's principal read.
        """
        if run is not None:
            identity = await self.identity_of(run)
            return await self._jobs.get_output(identity.workspace, identity.credential, task_run_id)
        identity = await self._identities.resolve(namespace, None)
        payload = await self._jobs.get_output(identity.workspace, identity.credential, task_run_id)
        metadata = payload.get("metadata")
        parent = metadata.get("job_run_id") if isinstance(metadata, Mapping) else None
        owner = None
        if isinstance(parent, int) and not isinstance(parent, bool):
            owner = await self._store.get_run_by_remote_id(namespace, parent)
        if owner is None:
            raise DatabricksRunNotFound(f"run {task_run_id} is not a task of this namespace's runs")
        return payload

    async def identity_of(self, run: RunRecord) -> ResolvedIdentity:
        """The identity the run was submitted under; the namespace's own once that is gone."""
        override = override_of(run.identity_ref, following=True)
        if override is None:
            return await self._identities.resolve(run.namespace)
        try:
            return await self._identities.resolve(run.namespace, override)
        except (CredentialUnavailable, InvalidRequest) as exc:
            # The ServiceAccount lost its label or the Secret was deleted: following the run
            # with the namespace's current identity beats leaving it unfollowed.
            log.warning(
                "run_identity_gone",
                run_id=run.id,
                namespace=run.namespace,
                identity=dict(run.identity_ref),
                reason=exc.message,
            )
            return await self._identities.resolve(run.namespace)

    async def give_up_submitting(self, run: RunRecord, reason: str) -> RunRecord | None:
        return await self._finish(run, RunState.INTERNAL_ERROR, reason)

    # --- internals --------------------------------------------------------------------------

    def _first_poll_delay(self) -> float:
        return self._settings.poller.min_interval_seconds

    async def _submit_later(self, run: RunRecord, now: datetime, exc: BaseException) -> RunRecord:
        reason = "Databricks did not answer in time" if isinstance(exc, TimeoutError) else str(exc)
        attempts = run.attempts + 1
        # Exponential backoff with jitter, capped by the poller's longest interval.
        delay = min(
            self._settings.poller.max_interval_seconds,
            self._settings.poller.min_interval_seconds * 2 ** min(attempts - 1, 6),
        ) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        self._metrics.submissions.labels(outcome="deferred").inc()
        log.warning(
            "submit_deferred",
            run_id=run.id,
            namespace=run.namespace,
            attempts=attempts,
            retry_in_seconds=round(delay, 1),
            reason=reason,
        )
        updated = await self._store.update_run(
            run.id,
            next_poll_at=now + timedelta(seconds=delay),
            attempts=attempts,
            state_message=f"waiting to submit (attempt {attempts}): {reason}",
        )
        return updated or await self._reload(run)

    async def _finish(self, run: RunRecord, state: RunState, message: str) -> RunRecord | None:
        now = self._clock()
        event = finished_event(dataclasses.replace(run, state=state, state_message=message), at=now)
        moved = await self._store.transition(
            run.id,
            state,
            expected=frozenset({run.state}),
            now=now,
            message=message,
            outbox_event=event,
        )
        if moved is not None:
            self._metrics.transitions.labels(state=state.value).inc()
            log.info("run_finished", run_id=run.id, namespace=run.namespace, state=state.value)
        return moved

    async def _reload(self, run: RunRecord) -> RunRecord:
        fresh = await self._store.get_run(run.namespace, run.id, with_history=True)
        if fresh is None:  # pragma: no cover - runs are never deleted
            raise NotFound(f"run {run.id} vanished from the ledger")
        return fresh
