"""An in-memory RunService that keeps the protocol's promises, for testing the HTTP layer."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.model import RunRecord, RunState, Transition, request_fingerprint
from gateway.runs.types import RunPage, SubmitOutcome, SubmitRequest

# The states a new run passes through before Databricks has it, in order.
_ADMISSION_PATH = (RunState.QUEUED, RunState.SUBMITTING, RunState.PENDING)


class FakeRunService:
    """Runs live in a dict; ids count up from 1; every lookup is scoped to its namespace.

    ``start_state`` is where a new run has got to when ``submit`` returns (QUEUED: waiting for
    quota; PENDING: Databricks accepted it). ``fail_next`` is raised by the next call, once.
    """

    def __init__(self, start_state: RunState = RunState.QUEUED) -> None:
        self.start_state = start_state
        self.runs: dict[int, RunRecord] = {}
        self.fail_next: BaseException | None = None
        self._next_id = 1
        self._next_databricks_id = 9000

    def _check_failure(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def _new_run(
        self, namespace: str, request: SubmitRequest, key: str | None, fingerprint: str
    ) -> RunRecord:
        now = datetime.now(UTC)
        path = _ADMISSION_PATH[: _ADMISSION_PATH.index(self.start_state) + 1]
        history = tuple(
            Transition(from_state=prev, to_state=state, at=now, message=f"entered {state}")
            for prev, state in zip((None, *path), path, strict=False)
        )
        remote = self.start_state is RunState.PENDING
        run = RunRecord(
            id=self._next_id,
            namespace=namespace,
            state=self.start_state,
            spec=request.spec,
            request_fingerprint=fingerprint,
            workspace="default",
            created_at=now,
            updated_at=now,
            idempotency_key=key,
            databricks_run_id=self._next_databricks_id if remote else None,
            run_page_url=f"https://example.test/#job/run/{self._next_databricks_id}"
            if remote
            else None,
            callback_url=request.callback_url,
            labels=dict(request.labels),
            history=history,
        )
        self._next_id += 1
        self._next_databricks_id += 1
        self.runs[run.id] = run
        return run

    async def submit(
        self, namespace: str, request: SubmitRequest, *, idempotency_key: str | None
    ) -> SubmitOutcome:
        self._check_failure()
        fingerprint = request_fingerprint(
            {
                "spec": request.spec,
                "callback_url": request.callback_url,
                "labels": dict(request.labels),
            }
        )
        if idempotency_key is not None:
            for run in self.runs.values():
                if run.namespace == namespace and run.idempotency_key == idempotency_key:
                    if run.request_fingerprint != fingerprint:
                        raise Conflict(
                            "This Idempotency-Key was used with a different body; "
                            "use a new key for a new run."
                        )
                    return SubmitOutcome(run=run, created=False)
        return SubmitOutcome(
            run=self._new_run(namespace, request, idempotency_key, fingerprint), created=True
        )

    async def get(self, namespace: str, run_id: int) -> RunRecord:
        self._check_failure()
        run = self.runs.get(run_id)
        if run is None or run.namespace != namespace:
            raise NotFound(f"No run {run_id} in namespace {namespace}.")
        return run

    async def list(
        self,
        namespace: str,
        *,
        states: frozenset[RunState] | None,
        limit: int,
        cursor: str | None,
    ) -> RunPage:
        self._check_failure()
        if cursor is not None and not cursor.isdigit():
            raise InvalidRequest("cursor is not one this service issued.", field="cursor")
        below = int(cursor) if cursor is not None else None
        matching = [
            run
            for run in sorted(self.runs.values(), key=lambda r: r.id, reverse=True)
            if run.namespace == namespace
            and (states is None or run.state in states)
            and (below is None or run.id < below)
        ]
        page = matching[:limit]
        more = len(matching) > limit
        return RunPage(runs=page, next_cursor=str(page[-1].id) if more else None)

    async def cancel(self, namespace: str, run_id: int) -> RunRecord:
        run = await self.get(namespace, run_id)
        if run.terminal or run.cancel_requested:
            return run
        run = dataclasses.replace(run, cancel_requested=True, updated_at=datetime.now(UTC))
        self.runs[run_id] = run
        return run
