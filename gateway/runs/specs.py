"""Pure preparation of a submission: its shape, guardrails on the spec, and the events a run
produces.

The shape is Databricks runs/submit's, in either of its two forms: ``tasks[]``, or the
single-task form (a top-level task type such as ``notebook_task`` with ``existing_cluster_id``
or ``new_cluster``, no ``tasks``) that Airflow's classic operators and flytekit's connector
send, which Databricks runs as a run of one task and which lakegate forwards as it came. A JSON
null anywhere counts as absent, as Databricks reads it (prefect-databricks sends every unset
field, task types included, as null).

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

TASK_TYPE_SUFFIX = "_task"
FOR_EACH_TASK = "for_each_task"
RUN_COMPLETED = "run.completed"
RUN_STATE_CHANGED = "run.state_changed"


def without_nulls(value: Any) -> Any:
    """``value`` with every null member of every object left out, at any depth; null items
    of a list are kept (a list position is not a field). Iterative, so nesting cannot
    exhaust the stack."""
    if not isinstance(value, dict | list):
        return value
    root: dict[str, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, dict[str, Any] | list[Any]]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs: Any = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in pairs:
            if child is None and isinstance(source, dict):
                continue
            copy: Any = child
            if isinstance(child, dict | list):
                copy = {} if isinstance(child, dict) else []
                stack.append((child, copy))
            if isinstance(target, dict):
                target[str(key)] = copy
            else:
                target.append(copy)
    return root


def task_types(spec: Mapping[str, Any]) -> list[str]:
    """The top-level task types of a single-task spec (any ``*_task`` key: Databricks keeps
    adding types, and Databricks itself judges which it knows)."""
    return sorted(name for name in spec if name.endswith(TASK_TYPE_SUFFIX))


def task_entries(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Each task of the spec with its field path: ``spec.tasks[i]``, or the spec itself for
    the single-task shape, whose compute (``new_cluster``, ``existing_cluster_id``) is
    top-level, and a for-each task's nested task (``...for_each_task.task``). Whatever reads a
    task's compute reads it here, so no shape escapes it."""
    if task_types(spec) and not spec.get("tasks"):
        entries: list[tuple[str, Mapping[str, Any]]] = [("spec", spec)]
    else:
        tasks = spec.get("tasks")
        listed = tasks if isinstance(tasks, list) else []
        entries = [(f"spec.tasks[{i}]", t) for i, t in enumerate(listed) if isinstance(t, Mapping)]
    # A for-each task's nested task brings its own compute, run once per input.
    return entries + [
        (f"{path}.{FOR_EACH_TASK}.task", nested)
        for path, task in entries
        if isinstance(loop := task.get(FOR_EACH_TASK), Mapping)
        and isinstance(nested := loop.get("task"), Mapping)
    ]


def shape_problem(spec: Mapping[str, Any]) -> str | None:
    """What is wrong with the spec's shape (nulls already dropped), or None.

    Only the shape is lakegate's to check: a non-empty ``tasks`` list of objects, or exactly
    one top-level task type holding an object. Everything inside is Databricks' to judge, so
    its own messages reach the caller.
    """
    types = task_types(spec)
    tasks = spec.get("tasks")
    if types:
        if tasks is not None and tasks != []:
            return (
                f"holds both 'tasks' and the top-level task type {', '.join(types)}: a run is "
                "either a list of tasks or a single task, give one of them"
            )
        if len(types) > 1:
            return f"names {len(types)} top-level task types ({', '.join(types)}); give one"
        if not isinstance(spec[types[0]], dict):
            return f"'{types[0]}' must be an object"
        return None
    if not isinstance(tasks, list) or not tasks:
        return (
            "must hold a non-empty 'tasks' array, or one top-level task type "
            "(notebook_task, spark_python_task, ...) for a single-task run, as Databricks "
            "runs/submit takes"
        )
    if not all(isinstance(task, dict) for task in tasks):
        return "'tasks' must be a list of tasks, each an object"
    return None


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
