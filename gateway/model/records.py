"""The run record as the ledger holds it, and the identities derived from a request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from gateway.model.states import RunState


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
    # The ServiceAccount or Secret the request chose in its namespace; names, never secrets.
    identity_ref: Mapping[str, str] = field(default_factory=dict)
    # Whom Databricks saw create it (``gateway.identity.principal``); names, never secrets.
    principal: Mapping[str, str] = field(default_factory=dict)
    next_poll_at: datetime | None = None
    attempts: int = 0
    cancel_requested: bool = False
    history: tuple[Transition, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state.terminal


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    """How many of a namespace's runs hold quota right now, as admission rules see it."""

    namespace: str
    active: int
    queued: int
    # Active runs of every namespace on the run's workspace (for the workspace's cap).
    workspace_active: int = 0
    # When the namespace's latest runs were created, newest first: the rate window. Empty when
    # the store checked the rate itself (then rate_wait_seconds says how it went).
    recent_submissions: tuple[datetime, ...] = ()
    # How long the namespace's runs that ended in the last day took on average, if any did.
    mean_run_seconds: float | None = None
    # False when the store left mean_run_seconds out (it is None then, meaning nothing).
    mean_run_read: bool = True
    # The rate bucket the store checked over the rate window, if it did: seconds until one more
    # submission fits (0.0: it fits now) and, only when it does not fit, how many of the
    # window's submissions came in the last minute (0 otherwise).
    rate_wait_seconds: float | None = None
    rate_last_minute: int = 0
    # Run time of the namespace in the last 24 h: each run's time from SUBMITTING to its end
    # (or now), clipped to the window; for quotas.run_hours_per_day.
    run_seconds: float = 0.0


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """A stable digest of a submission body, to tell a retry from a different request."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """``json.dumps(body, sort_keys=True, compact, ensure_ascii=False)`` in UTF-8: the bytes
    every stored fingerprint was made of, so they must never change.

    orjson writes exactly these bytes for a value without a float, several times as quick
    (tested over arbitrary such values); a float, whose text differs (``1e+16``, ``1e16``),
    or what orjson cannot take (an integer past 64 bits) is written by json itself."""
    if not _holds_float(body):
        try:
            return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            stack.extend(node.values())
        elif kind is list or kind is tuple:
            stack.extend(node)
        elif kind is float or (kind is not bool and isinstance(node, float)):
            return True
    return False


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
