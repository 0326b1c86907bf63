"""The Jobs API wire format, translated both ways. Pure: no I/O, no clock, no loop.

Requests: ``submit_body`` builds runs/submit bodies. Responses: ``parse_run``,
``parse_runs_page`` and ``parse_submit`` turn Databricks JSON into our frozen types, and
``error_from_response`` turns an error answer into the right ``gateway.errors`` class, which
``gateway.databricks.classify`` decides from its body, its ``error_code`` and its status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import jsonexact
from gateway.databricks.classify import classify_error, clip, parse_error_body
from gateway.errors import DatabricksError, DatabricksRateLimited
from gateway.model import RemoteStatus

MAX_IDEMPOTENCY_TOKEN_LENGTH = 64
DEFAULT_RETRY_AFTER_SECONDS = 1.0


# --- requests -------------------------------------------------------------------------------


def submit_body(spec: Mapping[str, Any], idempotency_token: str) -> dict[str, Any]:
    """The runs/submit body: the spec with our ``idempotency_token``, which is always sent.

    The token replaces any the spec carries: the ledger decides what counts as one run, and
    retrying runs/submit is only safe because of it.
    """
    if not idempotency_token:
        raise ValueError("runs/submit needs an idempotency_token")
    if len(idempotency_token) > MAX_IDEMPOTENCY_TOKEN_LENGTH:
        raise ValueError(
            f"idempotency_token has {len(idempotency_token)} characters; "
            f"Databricks allows at most {MAX_IDEMPOTENCY_TOKEN_LENGTH}"
        )
    body = dict(spec)
    body["idempotency_token"] = idempotency_token
    return body


# --- responses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """One task of a run; ``run_id`` is the task run id that runs/get-output wants."""

    task_key: str
    run_id: int | None
    status: RemoteStatus | None
    attempt_number: int = 0
    start_time: int | None = None
    end_time: int | None = None
    run_page_url: str | None = None


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """What runs/get (or one item of runs/list) says about a run. Times are epoch ms."""

    run_id: int
    status: RemoteStatus
    run_name: str | None = None
    run_page_url: str | None = None
    start_time: int | None = None
    # Databricks sends end_time 0 while the run is going; that becomes None here.
    end_time: int | None = None
    run_type: str | None = None
    tasks: tuple[TaskSnapshot, ...] = ()
    # API 2.2 pages tasks at 100; this says more exist beyond ``tasks``.
    has_more_tasks: bool = False


@dataclass(frozen=True, slots=True)
class RunsPage:
    """One page of runs/list, newest first."""

    runs: tuple[RunSnapshot, ...]
    has_more: bool = False
    next_page_token: str | None = None


def parse_json(text: str, *, endpoint: str) -> dict[str, Any]:
    """A successful answer's body as a JSON object (an empty body is ``{}``)."""
    if not text.strip():
        return {}
    try:
        # Polling reads pages of 25 runs: the standard decoder was an eighth of the poller's CPU.
        payload = jsonexact.loads(text)
    except ValueError as exc:
        raise _malformed(endpoint, "a body that is not JSON", text) from exc
    if not isinstance(payload, dict):
        raise _malformed(endpoint, "a JSON body that is not an object", text)
    return payload


def parse_submit(payload: Mapping[str, Any]) -> int:
    return _int(payload.get("run_id"), "runs/submit", "run_id")


def parse_remote_status(obj: Mapping[str, Any], *, endpoint: str = "runs/get") -> RemoteStatus:
    """The run's state from the legacy ``state`` and the newer ``status`` together."""
    state = _mapping(obj.get("state"), endpoint, "state")
    status = _mapping(obj.get("status"), endpoint, "status")
    details = _mapping(status.get("termination_details"), endpoint, "termination_details")
    # If Databricks ever drops the legacy object, status.state names the same life cycle.
    life_cycle = _opt_str(state.get("life_cycle_state")) or _opt_str(status.get("state"))
    if not life_cycle:
        raise _malformed(endpoint, "a run without state or status", json.dumps(dict(obj))[:200])
    return RemoteStatus(
        life_cycle_state=life_cycle,
        result_state=_opt_str(state.get("result_state")),
        state_message=_opt_str(state.get("state_message")) or "",
        user_cancelled_or_timedout=state.get("user_cancelled_or_timedout") is True,
        status_state=_opt_str(status.get("state")),
        termination_code=_opt_str(details.get("code")),
        termination_type=_opt_str(details.get("type")),
        termination_message=_opt_str(details.get("message")),
    )


def parse_run(obj: Mapping[str, Any], *, endpoint: str = "runs/get") -> RunSnapshot:
    tasks_raw = obj.get("tasks") or []
    if not isinstance(tasks_raw, list):
        raise _malformed(endpoint, "tasks that are not a list", str(tasks_raw))
    return RunSnapshot(
        run_id=_int(obj.get("run_id"), endpoint, "run_id"),
        status=parse_remote_status(obj, endpoint=endpoint),
        run_name=_opt_str(obj.get("run_name")),
        run_page_url=_opt_str(obj.get("run_page_url")),
        start_time=_time(obj.get("start_time"), endpoint, "start_time"),
        end_time=_time(obj.get("end_time"), endpoint, "end_time"),
        run_type=_opt_str(obj.get("run_type")),
        tasks=tuple(_parse_task(_mapping(t, endpoint, "task"), endpoint) for t in tasks_raw),
        has_more_tasks=bool(obj.get("next_page_token")),
    )


def parse_runs_page(payload: Mapping[str, Any]) -> RunsPage:
    endpoint = "runs/list"
    runs_raw = payload.get("runs") or []
    if not isinstance(runs_raw, list):
        raise _malformed(endpoint, "runs that are not a list", str(runs_raw))
    return RunsPage(
        runs=tuple(parse_run(_mapping(r, endpoint, "run"), endpoint=endpoint) for r in runs_raw),
        has_more=payload.get("has_more") is True,
        next_page_token=_opt_str(payload.get("next_page_token")) or None,
    )


def _parse_task(obj: Mapping[str, Any], endpoint: str) -> TaskSnapshot:
    has_state = "state" in obj or "status" in obj
    return TaskSnapshot(
        task_key=_opt_str(obj.get("task_key")) or "",
        run_id=_opt_int(obj.get("run_id"), endpoint, "task run_id"),
        status=parse_remote_status(obj, endpoint=endpoint) if has_state else None,
        attempt_number=_opt_int(obj.get("attempt_number"), endpoint, "attempt_number") or 0,
        start_time=_time(obj.get("start_time"), endpoint, "task start_time"),
        end_time=_time(obj.get("end_time"), endpoint, "task end_time"),
        run_page_url=_opt_str(obj.get("run_page_url")),
    )


# --- errors ---------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as integer seconds, as Databricks sends it; anything else is ignored."""
    raw = _header(headers, "Retry-After")
    if raw is None or not raw.strip().isdigit():
        return None
    return float(int(raw.strip()))


def error_from_response(
    status: int, headers: Mapping[str, str], text: str, *, endpoint: str
) -> DatabricksError:
    """The ``gateway.errors`` exception for an error answer, keeping Databricks' message."""
    body = parse_error_body(text)
    message = (
        body.message
        or clip(_header(headers, "X-Databricks-Reason-Phrase") or "")
        or f"HTTP {status}"
    )
    cls = classify_error(status, body.error_code, message, endpoint=endpoint)
    retry_after = parse_retry_after(headers)
    if cls is DatabricksRateLimited and retry_after is None:
        retry_after = DEFAULT_RETRY_AFTER_SECONDS
    code = f" {body.error_code}" if body.error_code else ""
    return cls(
        f"Databricks {endpoint} failed ({status}{code}): {message}",
        http_status=status,
        error_code=body.error_code,
        retry_after=retry_after,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _malformed(endpoint: str, what: str, sample: str) -> DatabricksError:
    return DatabricksError(f"Databricks {endpoint} sent {what}: {clip(sample[:200])}")


def _mapping(value: Any, endpoint: str, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _malformed(endpoint, f"a {what} that is not an object", str(value))
    return value


def _int(value: Any, endpoint: str, what: str) -> int:
    parsed = _opt_int(value, endpoint, what)
    if parsed is None:
        raise _malformed(endpoint, f"no {what}", str(value))
    return parsed


def _opt_int(value: Any, endpoint: str, what: str) -> int | None:
    if value is None:
        return None
    # int64 ids sometimes travel as strings through proxies; booleans are never ids.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _malformed(endpoint, f"a {what} that is not an integer", str(value))


def _time(value: Any, endpoint: str, what: str) -> int | None:
    parsed = _opt_int(value, endpoint, what)
    return parsed or None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
