"""Pure preparation of a submission: guardrails on the spec, and the events a run produces.

Events (outbox payloads, sent as webhooks): ``run.completed`` when a run ends, in any terminal
state; ``run.state_changed`` for the other transitions, for namespaces that ask for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.errors import InvalidRequest
from gateway.model import RunRecord
from gateway.settings import QuotaSettings

RUN_COMPLETED = "run.completed"
RUN_STATE_CHANGED = "run.state_changed"


def prepare_spec(spec: Mapping[str, Any], quotas: QuotaSettings) -> dict[str, Any]:
    """Apply the namespace's timeout default and ceiling; refuse what lakegate owns.

    ``idempotency_token`` belongs to lakegate (it is derived from the ledger id so that no
    accepted request can become two runs); callers say the same thing with Idempotency-Key.
    """
    if "idempotency_token" in spec:
        raise InvalidRequest(
            "spec.idempotency_token is set by lakegate; send an Idempotency-Key header instead",
            field="spec.idempotency_token",
        )
    out = dict(spec)
    timeout = out.get("timeout_seconds")
    if (timeout is None or timeout == 0) and quotas.default_timeout_seconds:
        out["timeout_seconds"] = quotas.default_timeout_seconds
        timeout = quotas.default_timeout_seconds
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
        raise InvalidRequest(
            "spec.timeout_seconds must be a whole number of seconds", field="spec.timeout_seconds"
        )
    ceiling = quotas.max_timeout_seconds
    if ceiling and (not timeout or timeout > ceiling):
        raise InvalidRequest(
            f"spec.timeout_seconds must be between 1 and {ceiling} for this namespace "
            f"(got {timeout or 'none'})",
            field="spec.timeout_seconds",
        )
    return out


def _rfc3339(moment: datetime) -> str:
    # As gateway.api.views.rfc3339 writes it (runs sits below the API and cannot import it;
    # tests/webhooks checks the two agree).
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_data(run: RunRecord) -> dict[str, Any]:
    """The run as the API shows it (``gateway.api.views.run_view`` without history)."""
    return {
        "id": run.id,
        "namespace": run.namespace,
        "state": run.state.value,
        "databricks_run_id": run.databricks_run_id,
        "run_page_url": run.run_page_url,
        "state_message": run.state_message,
        "created_at": _rfc3339(run.created_at),
        "updated_at": _rfc3339(run.updated_at),
        "labels": dict(run.labels),
        "callback_url": run.callback_url,
        "cancel_requested": run.cancel_requested,
        "identity": dict(run.identity_ref),
        "principal": dict(run.principal),
    }


def run_event(event_type: str, run: RunRecord, *, at: datetime) -> dict[str, Any]:
    """An outbox event: its type, when it happened, and the run as it was then.

    ``run`` is the run after the change (its state, message and ``updated_at`` as written).
    The dispatcher adds the event's stable ``id`` (the webhook-id) when it sends it.
    """
    return {"type": event_type, "timestamp": _rfc3339(at), "data": run_data(run)}


def completed_event(run: RunRecord, *, at: datetime) -> dict[str, Any]:
    """The event written when a run ends, in whatever terminal state (REJECTED too)."""
    if not run.state.terminal:
        raise ValueError(f"{run.state} does not end a run")
    return run_event(RUN_COMPLETED, run, at=at)


def state_changed_event(run: RunRecord, *, at: datetime) -> dict[str, Any]:
    """The event written for a change short of the end, when the namespace asks for them."""
    if run.state.terminal:
        raise ValueError(f"{run.state} ends a run: that is run.completed")
    return run_event(RUN_STATE_CHANGED, run, at=at)
