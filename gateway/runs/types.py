"""What the run service offers to the API: its protocol and the values it takes and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.model import RunRecord, RunState


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
