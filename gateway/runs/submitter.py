"""The remote half of a run: which identity follows it, and what is asked of Databricks for it.

``Submitter`` sends a SUBMITTING run to Databricks (with the idempotency token made from its
ledger id, so a retry can never create a second run), cancels, gives up on a submission that
was never confirmed, and reads a run's remote state and output for the Databricks-compatible
facade. The run service calls it on the request path and the poller in the background, the
poller through the ``RunSubmitter`` protocol only; it records every outcome through the
``RunLedger``, so neither caller writes a run itself.

What may heal by itself (a timeout, an upstream 5xx or 429, an identity briefly unavailable)
defers the submission with a jittered, growing delay (``model.submit_retry_delay``); what
Databricks refuses for good ends the run REJECTED.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from gateway.databricks.budgets import acting_for
from gateway.databricks.jobs import JobsClient
from gateway.errors import (
    CredentialUnavailable,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksRunNotFound,
    IdentityError,
    InvalidRequest,
    LakegateError,
    NotFound,
    RunIdentityGone,
)
from gateway.identity.principal import describe, group_key, same
from gateway.identity.resolver import (
    HoldsResolutions,
    IdentityOverride,
    IdentityResolver,
    ResolvedIdentity,
)
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import RunRecord, RunState, databricks_idempotency_token, submit_retry_delay
from gateway.runs.ledger import RunLedger
from gateway.runs.types import Clock, utcnow
from gateway.settings import PollerSettings
from gateway.store.base import Store

log = get_logger(__name__)


def override_of(ref: Mapping[str, str], *, following: bool = False) -> IdentityOverride | None:
    """A run's identity choice as the resolver takes it; None for the namespace's own."""
    if not ref:
        return None
    return IdentityOverride(
        service_account=ref.get("service_account"), secret=ref.get("secret"), following=following
    )


def _source_of(ref: Mapping[str, str]) -> str:
    if "service_account" in ref:
        return f"ServiceAccount '{ref['service_account']}'"
    return f"Secret '{ref.get('secret', '')}'"


def gone_message(run: RunRecord) -> str:
    """What a run whose identity is gone waits for, and how to give it back."""
    ref = run.identity_ref
    if "service_account" in ref:
        fix = (
            f"recreate ServiceAccount '{ref['service_account']}' in namespace "
            f"'{run.namespace}' with the label lakegate.io/databricks-enabled=true"
        )
    else:
        fix = (
            f"recreate Secret '{ref.get('secret', '')}' in namespace '{run.namespace}' "
            "with its credential"
        )
    return (
        f"not followed: the {_source_of(ref)} this run was submitted under is gone, and no "
        f"other identity may follow it; {fix} and following resumes"
    )


def _group_of(run: RunRecord) -> tuple[str, str, str]:
    return group_key(run.namespace, run.identity_ref, run.principal)


def changed_message(run: RunRecord, now: Mapping[str, str], origin: str) -> str:
    """What a run created as one principal waits for while its namespace resolves to another."""
    return (
        f"not followed: this run was created as {describe(run.principal)}, but namespace "
        f"'{run.namespace}' now resolves to {describe(now)} (from {origin}), and no other "
        "principal may follow it; give the namespace that identity back (its tenant policy, "
        "its ServiceAccount's client-id annotation, its Secret, or the gateway's default "
        "identity) and following resumes"
    )


class Submitter:
    """The concrete ``RunSubmitter``, and the facade's ``RemoteRuns``."""

    def __init__(
        self,
        *,
        store: Store,
        ledger: RunLedger,
        jobs: JobsClient,
        identities: IdentityResolver,
        settings: PollerSettings,
        metrics: Metrics,
        clock: Clock = utcnow,
        cancel_timeout: float = 10.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._jobs = jobs
        self._identities = identities
        self._held = identities.cached if isinstance(identities, HoldsResolutions) else None
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._cancel_timeout = cancel_timeout
        self._jitter = jitter
        # Runs whose identity was last found gone or another principal (the gauge counts
        # them), with their group: the poller follows a group together, so one run of it
        # followed again means all of them are.
        self._identity_gone: dict[int, tuple[str, str, str]] = {}
        # Told the run whose submission Databricks refused with 429: admission lowers the cap.
        self.on_rate_limited: list[Callable[[RunRecord], None]] = []
        # Awaited before each submission reaches Databricks; an IdentityError refuses it
        # (4xx) or defers it (5xx) like the run's own identity would.
        self.before_submit: list[Callable[[RunRecord, ResolvedIdentity], Awaitable[None]]] = []

    # --- identities -------------------------------------------------------------------------

    async def identity_for(self, namespace: str, choice: Mapping[str, str]) -> ResolvedIdentity:
        """The identity a new request of ``namespace`` runs as: its ``choice``, or the own."""
        return await self._identities.resolve(namespace, override_of(choice))

    def held_identity_for(
        self, namespace: str, choice: Mapping[str, str]
    ) -> ResolvedIdentity | None:
        """``identity_for``'s answer if the resolver holds it fresh, asking no one; else None."""
        if self._held is None:
            return None
        try:
            override = override_of(choice)
        except InvalidRequest:
            return None  # identity_for refuses it, after whatever the caller does first
        return self._held(namespace, override)

    async def identity_of(self, run: RunRecord) -> ResolvedIdentity:
        """The identity the run was submitted under, and no other.

        When its ServiceAccount or Secret is gone, or the namespace now resolves to another
        principal than the one the run was created as (a changed policy, another default
        identity, another client id), the run is not followed by that other principal: it
        waits, with ``RunIdentityGone`` saying what to restore, and is counted until it is back.
        """
        override = override_of(run.identity_ref, following=True)
        try:
            identity = await self._identities.resolve(run.namespace, override)
        except (CredentialUnavailable, InvalidRequest) as exc:
            if override is None:
                raise
            self._not_followed(run, "run_identity_gone", reason=exc.message)
            raise RunIdentityGone(
                gone_message(run),
                namespace=run.namespace,
                run_id=run.id,
                source=_source_of(run.identity_ref),
            ) from exc
        current = identity.principal
        if current is not None and not same(run.principal, current):
            self._not_followed(run, "run_principal_changed", now=current.record())
            raise RunIdentityGone(
                changed_message(run, current.record(), identity.origin),
                namespace=run.namespace,
                run_id=run.id,
                source=identity.origin,
            )
        group = _group_of(run)
        if group in self._identity_gone.values():
            self._identity_gone = {k: g for k, g in self._identity_gone.items() if g != group}
            self._metrics.runs_identity_gone.set(len(self._identity_gone))
        return identity

    def _not_followed(self, run: RunRecord, event: str, **why: object) -> None:
        self._identity_gone[run.id] = _group_of(run)
        self._metrics.runs_identity_gone.set(len(self._identity_gone))
        log.warning(
            event,
            run_id=run.id,
            namespace=run.namespace,
            identity=dict(run.identity_ref),
            principal=dict(run.principal),
            **why,
        )

    # --- submitting and cancelling ----------------------------------------------------------

    async def submit_remote(
        self, run: RunRecord, identity: ResolvedIdentity | None = None, *, deadline: float
    ) -> RunRecord:
        """Send a SUBMITTING run to Databricks once; record what came of it."""
        now = self._clock()
        try:
            identity = identity or await self.identity_of(run)
            token = databricks_idempotency_token(self._store.installation_id, run.id)
            with acting_for(run.namespace):  # the namespace's share of the submit budget
                async with asyncio.timeout(deadline):
                    for prepare in self.before_submit:  # e.g. the Git credential (gitcreds)
                        await prepare(run, identity)
                    remote_id = await self._jobs.submit(
                        identity.workspace, identity.credential, run.spec, idempotency_token=token
                    )
        except (DatabricksInvalidRequest, DatabricksPermissionDenied) as exc:
            self._metrics.observe_submission(run.namespace, "rejected")
            rejected = await self._ledger.finish(
                run, RunState.REJECTED, f"Databricks refused the run: {exc.message}"
            )
            return rejected or await self._ledger.current(run)
        except IdentityError as exc:
            if exc.status >= 500:
                return await self._submit_later(run, now, exc)
            # The namespace's identity is wrongly set up: trying again an hour long would
            # only ask the token endpoint again for what it refused.
            self._metrics.observe_submission(run.namespace, "rejected")
            rejected = await self._ledger.finish(
                run, RunState.REJECTED, f"the namespace's identity was refused: {exc.message}"
            )
            return rejected or await self._ledger.current(run)
        except (TimeoutError, LakegateError) as exc:
            if isinstance(exc, DatabricksRateLimited):
                for listener in self.on_rate_limited:
                    listener(run)
            return await self._submit_later(run, now, exc)
        self._metrics.observe_submission(run.namespace, "submitted")
        moved = await self._ledger.record_submission(
            run,
            remote_id=remote_id,
            host=identity.workspace.host,
            first_poll_in=self._settings.min_interval_seconds,
        )
        return moved or await self._ledger.current(run)

    async def cancel_remote(self, run: RunRecord) -> None:
        """Ask Databricks to cancel; failures are left for the poller to try again."""
        if run.databricks_run_id is None:
            return
        try:
            identity = await self.identity_of(run)
            async with asyncio.timeout(self._cancel_timeout):
                await self._jobs.cancel(
                    identity.workspace, identity.credential, run.databricks_run_id
                )
        except (TimeoutError, LakegateError) as exc:
            log.warning("cancel_deferred", run_id=run.id, namespace=run.namespace, reason=str(exc))

    async def give_up_submitting(self, run: RunRecord, reason: str) -> RunRecord | None:
        """End a submission Databricks never confirmed: INTERNAL_ERROR, with its event."""
        return await self._ledger.finish(run, RunState.INTERNAL_ERROR, reason)

    async def _submit_later(self, run: RunRecord, now: datetime, exc: BaseException) -> RunRecord:
        reason = "Databricks did not answer in time" if isinstance(exc, TimeoutError) else str(exc)
        attempts = run.attempts + 1
        delay = submit_retry_delay(
            attempts,
            min_interval=self._settings.min_interval_seconds,
            max_interval=self._settings.max_interval_seconds,
            jitter=self._jitter(),
        )
        self._metrics.observe_submission(run.namespace, "deferred")
        log.warning(
            "submit_deferred",
            run_id=run.id,
            namespace=run.namespace,
            attempts=attempts,
            retry_in_seconds=round(delay, 1),
            reason=reason,
        )
        updated = await self._ledger.defer_submission(
            run,
            attempts=attempts,
            next_poll_at=now + timedelta(seconds=delay),
            message=f"waiting to submit (attempt {attempts}): {reason}",
        )
        return updated or await self._ledger.current(run)

    # --- the facade's reads -----------------------------------------------------------------

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
        with acting_for(run.namespace):  # the namespace's share of the runs/get budget
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
        await self._owner_of(namespace, task_run_id, metadata)
        return payload

    async def remote_task_run(
        self, namespace: str, task_run_id: int, *, params: Mapping[str, str] | None = None
    ) -> tuple[dict[str, Any], RunRecord]:
        """Databricks' runs/get answer for a task run of one of the namespace's runs, and
        that run; another namespace's task run is no run at all (``DatabricksRunNotFound``)."""
        identity = await self._identities.resolve(namespace, None)
        payload = await self._jobs.get_payload(
            identity.workspace, identity.credential, task_run_id, params=params
        )
        return payload, await self._owner_of(namespace, task_run_id, payload)

    async def _owner_of(self, namespace: str, task_run_id: int, run: object) -> RunRecord:
        """The namespace's run that the task run ``run`` (Databricks' JSON) belongs to."""
        parent = run.get("job_run_id") if isinstance(run, Mapping) else None
        owner = None
        if isinstance(parent, int) and not isinstance(parent, bool):
            owner = await self._store.get_run_by_remote_id(namespace, parent)
        if owner is None:
            raise DatabricksRunNotFound(f"run {task_run_id} is not a task of this namespace's runs")
        return owner
