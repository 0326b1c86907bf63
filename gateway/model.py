"""The pure domain: run states, the run record, and what Databricks says about a run.

Nothing here does I/O or imports anything of ours; every function is tested without a loop.
The state machine and the mapping from Databricks' states live here (``transition``,
``map_remote_status``), so the poller, the service and the store only apply what this module
decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[RunState] = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELED,
        RunState.SKIPPED,
        RunState.INTERNAL_ERROR,
        RunState.REJECTED,
    }
)
# Runs that Databricks knows about and that have not ended: the poller follows these.
REMOTE_ACTIVE_STATES: frozenset[RunState] = frozenset(
    {RunState.PENDING, RunState.RUNNING, RunState.TERMINATING}
)


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """What Databricks reports about a run: the legacy ``state`` and the newer ``status``."""

    life_cycle_state: str
    result_state: str | None = None
    state_message: str = ""
    user_cancelled_or_timedout: bool = False
    status_state: str | None = None
    termination_code: str | None = None
    termination_type: str | None = None
    termination_message: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One entry of a run's history."""

    from_state: RunState | None
    to_state: RunState
    at: datetime
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the ledger holds it. It never holds a credential."""

    id: int
    namespace: str
    state: RunState
    spec: Mapping[str, Any]
    request_fingerprint: str
    workspace: str
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = None
    databricks_host: str | None = None
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    state_message: str = ""
    callback_url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    next_poll_at: datetime | None = None
    attempts: int = 0
    cancel_requested: bool = False
    history: tuple[Transition, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state.terminal


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """A stable digest of a submission body, to tell a retry from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def databricks_idempotency_token(installation_id: str, run_id: int) -> str:
    """The ``idempotency_token`` sent with runs/submit for ledger row ``run_id``.

    The installation id (random, made once per ledger) keeps two gateways, or a ledger that was
    reset, from sharing tokens on one workspace: a bare row id would make Databricks hand back
    another deployment's run. Databricks allows at most 64 characters.
    """
    token = f"lakegate-{installation_id}-{run_id}"
    if len(token) > 64:
        raise ValueError("idempotency token over 64 characters")
    return token
