"""Pure preparation of a submission: guardrails on the spec, and the events a run produces."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.errors import InvalidRequest
from gateway.model import RunRecord
from gateway.settings import QuotaSettings

RUN_FINISHED = "run.finished"


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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def finished_event(run: RunRecord, *, at: datetime) -> dict[str, Any]:
    """The payload of the event written to the outbox when a run ends."""
    return {
        "type": RUN_FINISHED,
        "timestamp": _iso(at),
        "data": {
            "id": run.id,
            "namespace": run.namespace,
            "state": run.state.value,
            "databricks_run_id": run.databricks_run_id,
            "run_page_url": run.run_page_url,
            "state_message": run.state_message,
            "labels": dict(run.labels),
            "created_at": _iso(run.created_at),
        },
    }
