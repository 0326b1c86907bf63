"""The seams of the runs package: what the service offers the API, what the poller needs.

``RunService`` is the API's view (submit, get, list, cancel), with the values it takes and
returns. ``RunSubmitter`` is the remote half as the poller sees it (which identity follows a
run, submitting, cancelling, giving up), so the poller depends on this protocol and never on
the service. ``Clock`` is how every part of the package tells the time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.identity.resolver import ResolvedIdentity
from gateway.model import RunRecord, RunState

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A scheduler's submission: the Databricks runs/submit payload plus lakegate's extras."""

    spec: Mapping[str, Any]
    callback_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Another ServiceAccount or Secret of the namespace to run as: {"service_account": name}
    # or {"secret": name}; empty for the namespace's own identity.
    identity: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """The run, and whether this call created it (False: an idempotent replay)."""

    run: RunRecord
    created: bool


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[RunRecord]
    next_cursor: str | None


class RunService(Protocol):
    """Submit, read, list and cancel runs of one namespace at a time.

    Every method is namespace-scoped: a run of another namespace is ``NotFound``. Errors are
    ``gateway.errors`` types; the API maps them to HTTP.
    """

    async def submit(
        self, namespace: str, request: SubmitRequest, *, idempotency_key: str | None
    ) -> SubmitOutcome: ...

    async def get(self, namespace: str, run_id: int) -> RunRecord: ...

    async def list(
        self,
        namespace: str,
        *,
        states: frozenset[RunState] | None,
        limit: int,
        cursor: str | None,
    ) -> RunPage: ...

    async def cancel(self, namespace: str, run_id: int) -> RunRecord: ...


class RunSubmitter(Protocol):
    """The remote half of a run, as the poller uses it (``gateway.runs.submitter.Submitter``).

    Every outcome is recorded in the ledger by the submitter itself; errors that may heal are
    deferred, not raised, except that ``identity_of`` raises when no identity can be had.
    """

    async def identity_of(self, run: RunRecord) -> ResolvedIdentity:
        """The identity that submitted the run, or the namespace's own once that is gone."""
        ...

    async def submit_remote(
        self, run: RunRecord, identity: ResolvedIdentity | None = None, *, deadline: float
    ) -> RunRecord:
        """Send a SUBMITTING run to Databricks once; return the run as the ledger has it now."""
        ...

    async def cancel_remote(self, run: RunRecord) -> None:
        """Ask Databricks to cancel the run; a failure is logged and left for the next poll."""
        ...

    async def give_up_submitting(self, run: RunRecord, reason: str) -> RunRecord | None:
        """End a submission Databricks never confirmed: INTERNAL_ERROR, with ``reason``."""
        ...
