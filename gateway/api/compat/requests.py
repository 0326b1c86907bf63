"""What a Databricks client sends the facade, read into lakegate's terms. Pure.

runs/submit bodies (the ``idempotency_token`` becomes the namespace's Idempotency-Key; the
single-task shape is accepted as Databricks accepts it), GET parameters (the query string, and
a JSON object body for what the query lacks, as Airflow's async hook sends them; booleans in
any case: py-sdk sends ``true``, Airflow ``True``), run ids as numbers or strings of digits,
the lakegate headers (``X-Lakegate-Namespace``, ``X-Lakegate-Labels``), and runs/list's
filters and paging. A JSON null counts as absent at every depth. Every refusal is a
``CompatError`` worded as Databricks words it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gateway.api.compat.errors import CompatError
from gateway.api.compat.wire import epoch_ms
from gateway.api.jsonbody import depth, read_json
from gateway.api.schemas import MAX_LABELS, MAX_SPEC_DEPTH, LabelKey, LabelValue, unencodable
from gateway.model import TERMINAL_STATES, RunRecord, RunState
from gateway.runs.specs import shape_problem, task_types, without_nulls
from gateway.runs.types import SubmitRequest
from gateway.settings import NAMESPACE_RE

MAX_LIST_LIMIT = 25
# API 2.0 takes one more: "Invalid limit 27 - it has to be no more than 26." is what the legacy
# CLI, which calls 2.0 by default, got back (reference section 1.6, databricks-cli #464).
MAX_LIST_LIMIT_2_0 = 26
DEFAULT_LIST_LIMIT = 20
MAX_IDEMPOTENCY_TOKEN = 64
RUN_TYPES = frozenset({"JOB_RUN", "WORKFLOW_RUN", "SUBMIT_RUN"})
INT64_MAX = 2**63 - 1
NAMESPACE_HEADER = "X-Lakegate-Namespace"
LABELS_HEADER = "X-Lakegate-Labels"
# Runs that are active in Databricks' sense (QUEUED, PENDING, RUNNING, TERMINATING): for a
# client, a run lakegate still holds is queued.
ACTIVE_LEDGER_STATES = frozenset(s for s in RunState if not s.terminal)
# Runs Databricks refused are not listed: their submit was answered with Databricks' 400, and
# Databricks lists no such run.
LISTED_STATES = frozenset(RunState) - {RunState.REJECTED}

Query = Mapping[str, Sequence[str]]


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object without its nulls; an empty body is ``{}``, as
    Databricks reads it."""
    if not raw.strip():
        return {}
    try:
        parsed = read_json(raw)
    except (ValueError, RecursionError) as exc:
        raise CompatError(
            "Invalid JSON given in the body of the request - failed to parse given JSON",
            error_code="MALFORMED_REQUEST",
        ) from exc
    body = parsed.value
    if not isinstance(body, dict):
        raise CompatError(
            "Invalid JSON given in the body of the request - expected a map",
            error_code="MALFORMED_REQUEST",
        )
    where = None if parsed.text_checked else unencodable(body)
    if where is not None:
        raise CompatError(
            f"Invalid JSON given in the body of the request - {where} is not valid text "
            "(a lone surrogate)",
            error_code="MALFORMED_REQUEST",
        )
    if not parsed.may_hold_null:
        return body
    stripped: dict[str, Any] = without_nulls(body)
    return stripped


def parse_submit(raw: bytes, labels_header: Sequence[str]) -> tuple[SubmitRequest, str | None]:
    """A runs/submit body as lakegate's submission, and the client's idempotency token.

    The token leaves the spec (lakegate sends its own to Databricks) and becomes the
    namespace's Idempotency-Key, so a client retry finds the run its first attempt made.
    Everything else Databricks validates, so its own messages reach the client.
    """
    body = parse_json_object(raw)
    spec = dict(body)
    token = spec.pop("idempotency_token", None)
    if token is not None and not isinstance(token, str):
        raise CompatError("Invalid value for field idempotency_token: expected a string")
    if token is not None and len(token) > MAX_IDEMPOTENCY_TOKEN:
        raise CompatError(
            f"idempotency_token must be at most {MAX_IDEMPOTENCY_TOKEN} characters long, "
            f"got {len(token)}"
        )
    problem = shape_problem(spec)
    if problem is not None and not spec.get("tasks") and not task_types(spec):
        # Databricks' own words for a run of no task.
        raise CompatError(
            "At least one task is required: tasks must be a non-empty list, or the body "
            "must hold one top-level task type (notebook_task, ...) for a single-task run"
        )
    if problem is not None:
        raise CompatError(f"Invalid value for field tasks: the run {problem}")
    # The ledger stores and fingerprints the spec; bound its nesting before anything does.
    if depth(spec) > MAX_SPEC_DEPTH:
        raise CompatError(f"The request nests deeper than {MAX_SPEC_DEPTH} levels")
    labels = parse_labels(labels_header)
    return SubmitRequest(spec=spec, labels=labels), token or None


_LABELS = TypeAdapter(dict[LabelKey, LabelValue])


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """``X-Lakegate-Labels: team=etl,tier=gold`` (the header may repeat) as run labels."""
    labels: dict[str, str] = {}
    for value in values:
        for piece in value.split(","):
            if not piece.strip():
                continue
            key, sep, label = piece.partition("=")
            if not sep:
                raise CompatError(f"{LABELS_HEADER} takes key=value pairs separated by commas")
            labels[key.strip()] = label.strip()
    if len(labels) > MAX_LABELS:
        raise CompatError(f"{LABELS_HEADER} holds at most {MAX_LABELS} labels")
    try:
        return _LABELS.validate_python(labels)
    except ValidationError as exc:
        raise CompatError(
            f"{LABELS_HEADER}: label keys are 1 to 63 letters, digits, '.', '_', '/' or '-', "
            "starting and ending with a letter or digit; values at most 256 characters"
        ) from exc


def parse_namespace(values: Sequence[str]) -> str | None:
    """The X-Lakegate-Namespace header, or None when the client sent none."""
    if not values:
        return None
    if len(values) > 1 or not NAMESPACE_RE.match(values[0]):
        raise CompatError(
            f"{NAMESPACE_HEADER} must be one Kubernetes namespace name: 1 to 63 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit"
        )
    return values[0]


def get_parameters(query: Query, raw_body: bytes) -> Query:
    """A GET's parameters: the query string, then for each one it lacks the JSON object body's.

    Airflow's async hook sends ``GET runs/get`` with ``{"run_id": N}`` as its body and no
    query string, and Databricks accepts it. A body that is not a JSON object counts as no
    body, so a GET without its ``run_id`` is refused alike however it was sent.
    """
    try:
        body = parse_json_object(raw_body)
    except CompatError:
        return query
    merged: dict[str, Sequence[str]] = dict(query)
    for name, value in body.items():
        if _first(query, name) is None:
            merged[name] = [_as_parameter(value)]
    return merged


def _as_parameter(value: Any) -> str:
    """A JSON value as the query string would carry it; what no parameter takes (a list, an
    object, a fraction) keeps its JSON text, which the parameter's own check then refuses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value)


def _first(query: Query, name: str) -> str | None:
    values = query.get(name) or ()
    return values[0] if values and values[0] != "" else None


def parse_bool(query: Query, name: str) -> bool:
    raw = _first(query, name)
    if raw is None:
        return False
    # py-sdk sends true/false; Airflow's GET params arrive as True/False.
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise CompatError(
            f"Invalid value for parameter {name}: expected true or false, got {raw[:64]}"
        )
    return lowered == "true"


def parse_int(query: Query, name: str) -> int | None:
    raw = _first(query, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise CompatError(
            f"Invalid value for parameter {name}: expected an integer, got {raw[:64]}"
        ) from None
    if abs(value) > INT64_MAX:
        raise CompatError(f"Invalid value for parameter {name}: out of range")
    return value


def parse_run_id(query: Query) -> int:
    run_id = parse_int(query, "run_id")
    if run_id is None:
        raise CompatError("Missing required field: run_id")
    return run_id


def body_run_id(body: Mapping[str, Any]) -> int:
    run_id = body.get("run_id")
    if run_id is None:
        raise CompatError("Missing required field: run_id")
    if isinstance(run_id, str) and run_id.isascii() and run_id.isdigit():
        run_id = int(run_id)
    if isinstance(run_id, bool) or not isinstance(run_id, int) or abs(run_id) > INT64_MAX:
        raise CompatError("Invalid value for field run_id: expected an integer")
    return run_id


# Query parameters of runs/get that only Databricks can answer; passed on as the client sent
# them, booleans normalised to the lowercase Databricks parses.
_REMOTE_GET_PARAMETERS = ("page_token", "include_history", "include_resolved_values")


def remote_get_params(query: Query) -> dict[str, str]:
    params: dict[str, str] = {}
    for name in _REMOTE_GET_PARAMETERS:
        raw = _first(query, name)
        if raw is None:
            continue
        params[name] = raw if name == "page_token" else str(parse_bool(query, name)).lower()
    return params


# --- runs/list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageToken:
    """Where a page starts: a ledger cursor (None: the newest run), rows to skip after it,
    and matching runs still to pass over for a deprecated ``offset``.

    The skip lets a page end anywhere inside a block of ledger rows: filters such as
    start_time may leave a block half used. The offset travels along because a page cut
    short by the scan budget may not have passed over all of it yet.
    """

    cursor: str | None
    skip: int = 0
    offset: int = 0

    def encode(self) -> str:
        data = {"c": self.cursor, "s": self.skip, "o": self.offset}
        raw = json.dumps(data, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageToken:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            cursor, skip, offset = data["c"], data["s"], data.get("o", 0)
            if cursor is not None and not isinstance(cursor, str):
                raise ValueError("cursor")
            if not (_count(skip) and _count(offset)):
                raise ValueError("skip or offset")
        # RecursionError: a token of thousands of '[' nests past what json can decode.
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            RecursionError,
            binascii.Error,
        ) as exc:
            raise CompatError(f"Invalid page token: {token[:64]}") from exc
        return cls(cursor, skip, offset)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A runs/list request: which of the namespace's runs, and which page of them."""

    limit: int = DEFAULT_LIST_LIMIT
    active_only: bool = False
    completed_only: bool = False
    offset: int = 0
    page: PageToken | None = None
    # Ledger runs are all one-time runs without a job: a filter for anything else matches none.
    matches_nothing: bool = False
    start_time_from: int | None = None
    start_time_to: int | None = None
    expand_tasks: bool = False

    @property
    def states(self) -> frozenset[RunState]:
        if self.active_only:
            return ACTIVE_LEDGER_STATES
        if self.completed_only:
            return TERMINAL_STATES & LISTED_STATES
        return LISTED_STATES

    @property
    def filters_by_time(self) -> bool:
        return self.start_time_from is not None or self.start_time_to is not None

    def admits(self, run: RunRecord) -> bool:
        """Whether ``run`` passes the time filters (the state filter is the ledger's)."""
        started = epoch_ms(run.created_at)
        if self.start_time_from is not None and started < self.start_time_from:
            return False
        return self.start_time_to is None or started <= self.start_time_to

    def past_window(self, run: RunRecord) -> bool:
        """Whether ``run`` and every older one started before ``start_time_from``."""
        return self.start_time_from is not None and epoch_ms(run.created_at) < self.start_time_from


def parse_list_query(query: Query, *, max_limit: int = MAX_LIST_LIMIT) -> ListQuery:
    """runs/list's parameters; ``max_limit`` is the API version's (2.0 takes 26)."""
    active_only = parse_bool(query, "active_only")
    completed_only = parse_bool(query, "completed_only")
    if active_only and completed_only:
        raise CompatError("active_only and completed_only cannot both be true.")
    limit = parse_int(query, "limit")
    if limit is None:
        limit = DEFAULT_LIST_LIMIT
    elif limit == 0:
        limit = max_limit
    elif limit > max_limit:
        raise CompatError(f"Invalid limit {limit} - it has to be no more than {max_limit}.")
    elif limit < 0:
        raise CompatError(f"Invalid limit {limit} - it has to be no less than 0.")
    offset = parse_int(query, "offset") or 0
    if offset < 0:
        raise CompatError(f"Invalid offset {offset} - it has to be no less than 0.")
    run_type = _first(query, "run_type")
    if run_type is not None and run_type not in RUN_TYPES:
        raise CompatError(f"Invalid value for parameter run_type: {run_type[:64]}")
    job_id = parse_int(query, "job_id")
    token = _first(query, "page_token")
    return ListQuery(
        limit=limit,
        active_only=active_only,
        completed_only=completed_only,
        offset=offset,
        page=PageToken.decode(token) if token else None,
        matches_nothing=run_type not in (None, "SUBMIT_RUN") or job_id is not None,
        start_time_from=parse_int(query, "start_time_from"),
        start_time_to=parse_int(query, "start_time_to"),
        expand_tasks=parse_bool(query, "expand_tasks"),
    )
