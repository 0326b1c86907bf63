"""How runs look on the wire: pure functions from domain records to JSON-ready dicts.

The spec, the request fingerprint, the idempotency key and the Databricks host stay out of
every view: a spec may carry parameters a caller treats as sensitive, and the rest is ledger
bookkeeping that no client should come to rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.model import RunRecord, Transition


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00.000000Z``: UTC, fixed width, so strings sort like times."""
    # The ledger writes UTC; a naive value from a store driver means UTC, never local time.
    # isoformat is C and three times as quick as strftime; the year is padded alike. The
    # ledger's times are in UTC already, and most of a view's time went into converting them.
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def transition_view(transition: Transition) -> dict[str, Any]:
    return {
        "from": transition.from_state.value if transition.from_state is not None else None,
        "to": transition.to_state.value,
        "at": rfc3339(transition.at),
        "message": transition.message,
    }


def run_view(run: RunRecord, *, history: bool = False) -> dict[str, Any]:
    """The run as the API shows it; ``history`` adds every transition, oldest first."""
    view: dict[str, Any] = {
        "id": run.id,
        "namespace": run.namespace,
        "state": run.state.value,
        "databricks_run_id": run.databricks_run_id,
        "run_page_url": run.run_page_url,
        "state_message": run.state_message,
        "created_at": rfc3339(run.created_at),
        "updated_at": rfc3339(run.updated_at),
        "labels": dict(run.labels),
        "callback_url": run.callback_url,
        "cancel_requested": run.cancel_requested,
        "identity": dict(run.identity_ref),
        "principal": dict(run.principal),
    }
    if history:
        view["history"] = [transition_view(t) for t in run.history]
    return view


def run_location(namespace: str, run_id: int) -> str:
    return f"/v1/namespaces/{namespace}/runs/{run_id}"
