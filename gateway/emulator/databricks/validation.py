"""Validation of a runs/submit body, as the Jobs API does it: pure, no I/O.

``parse_submit`` turns the raw body into a ``SubmitSpec`` or an ``Invalid`` carrying the
Databricks ``error_code`` and a message. The real messages are unverified (reference section
8); these say what is wrong in the words a Databricks user would recognise.

Every body is read with its null members dropped, at any depth: Databricks reads a JSON null
as unset, and prefect-databricks sends every unset field (task types included) as null. A
body without ``tasks`` but with a top-level task type is the single-task shape that Airflow's
classic operators and flytekit send (reference section 9); it runs as a run of one task.

A task may steer its own emulated fate with ``lakegate_emulator_result`` and
``lakegate_emulator_seconds``: keys of ``notebook_task.base_parameters`` or
``python_wheel_task.named_parameters``, or ``name=value`` entries of a ``parameters`` list.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from gateway.emulator.databricks.for_each import (
    FOR_EACH,
    ForEachRefused,
    ForEachSpec,
    parse_for_each,
)
from gateway.emulator.databricks.lifecycle import Outcome

RESULT_PARAM = "lakegate_emulator_result"
SECONDS_PARAM = "lakegate_emulator_seconds"
MAX_TOKEN_CHARS = 64
MAX_TASKS = 1000
MAX_RUN_NAME_BYTES = 4096
_TASK_KEY_RE = re.compile(r"^[\w\-.]{1,100}$")
_TASK_KEY_SPILL = re.compile(r"[^\w\-.]")
# What moves from the top level of a single-task body into its one task, besides the type.
_SINGLE_TASK_FIELDS = ("existing_cluster_id", "new_cluster", "libraries")
# Only what a test or a demo may ask for; the others are what the emulator decides.
ASKABLE = frozenset(Outcome) - {Outcome.USER_CANCELED, Outcome.UPSTREAM_FAILED}
_LIST_PARAM_TASKS = (
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
)
_REQUIRED_FIELDS = {
    "notebook_task": ("notebook_path",),
    "spark_python_task": ("python_file",),
    "python_wheel_task": ("package_name", "entry_point"),
}


@dataclass(frozen=True)
class Invalid:
    error_code: str
    message: str


@dataclass(frozen=True)
class TaskSpec:
    task_key: str
    task_type: str
    depends_on: tuple[str, ...]
    asked_outcome: Outcome | None
    asked_seconds: float | None
    timeout_seconds: int
    body: dict[str, Any]
    # A for_each_task's inputs and nested task (gateway.emulator.databricks.for_each).
    for_each: ForEachSpec | None = None


@dataclass(frozen=True)
class SubmitSpec:
    run_name: str
    timeout_seconds: int
    idempotency_token: str | None
    queue_enabled: bool | None
    tasks: tuple[TaskSpec, ...]
    body: dict[str, Any]
    # Submitted in the single-task shape (a top-level task type, no tasks[]).
    single_task: bool = False


class _Reject(Exception):
    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.invalid = Invalid(error_code, message)


def parse_json_object(text: str) -> dict[str, Any] | Invalid:
    """The body as a JSON object without its nulls, or the MALFORMED_REQUEST answer."""
    try:
        body = json.loads(text) if text.strip() else {}
        if not isinstance(body, dict):
            return Invalid(
                "MALFORMED_REQUEST",
                "Invalid JSON given in the body of the request - expected a map",
            )
        without_nulls: dict[str, Any] = _without_nulls(body)
    except (json.JSONDecodeError, RecursionError):
        return Invalid(
            "MALFORMED_REQUEST",
            "Invalid JSON given in the body of the request - failed to parse given JSON",
        )
    return without_nulls


def _without_nulls(value: Any) -> Any:
    """``value`` with every null member of every object left out; list items are kept."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def parse_submit(text: str) -> SubmitSpec | Invalid:
    """Validate a runs/submit body."""
    body = parse_json_object(text)
    if isinstance(body, Invalid):
        return body
    try:
        return _submit(body)
    except _Reject as exc:
        return exc.invalid


def _submit(body: dict[str, Any]) -> SubmitSpec:
    run_name = _optional(body, "run_name", str, "a string")
    if run_name is not None and len(run_name.encode()) > MAX_RUN_NAME_BYTES:
        raise _Reject(f"run_name must be at most {MAX_RUN_NAME_BYTES} bytes long")
    timeout = _non_negative_int(body, "timeout_seconds")
    token = _optional(body, "idempotency_token", str, "a string")
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise _Reject(
            f"idempotency_token must be at most {MAX_TOKEN_CHARS} characters long, got {len(token)}"
        )
    queue = _optional(body, "queue", dict, "an object")
    queue_enabled = None
    if queue is not None and "enabled" in queue:
        if not isinstance(queue["enabled"], bool):
            raise _Reject("Invalid value for field queue.enabled: expected a boolean")
        queue_enabled = queue["enabled"]
    name = run_name or "Untitled"
    single_types = _task_types(body)
    if single_types:
        specs: tuple[TaskSpec, ...] = (_task("", _single_task(body, name, single_types)),)
    else:
        specs = _listed_tasks(body.get("tasks"))
    _check_graph(specs)
    return SubmitSpec(
        run_name=run_name if run_name is not None else "Untitled",
        timeout_seconds=timeout,
        idempotency_token=token,
        queue_enabled=queue_enabled,
        tasks=specs,
        body=body,
        single_task=bool(single_types),
    )


def _task_types(body: dict[str, Any]) -> list[str]:
    # Any *_task key is a task type, as newer SDKs keep adding them; nulls are gone already.
    return [name for name in body if name.endswith("_task")]


def _single_task(body: dict[str, Any], run_name: str, types: list[str]) -> dict[str, Any]:
    """The one task of a single-task body: its task type(s) and compute, under a task key.

    The reference does not say which task_key Databricks shows for such a run. The emulator
    names the task after the run, as the Jobs UI names the task of a single-task job after
    the job (unverified): the run name in the task-key alphabet, other characters as '_',
    at most 100 characters. An empty ``tasks`` list is read as no tasks at all.
    """
    if body.get("tasks", []) != []:
        raise _Reject(
            "A run is either a list of tasks or a single task: give tasks or a top-level "
            f"task type, not both (found tasks and {', '.join(sorted(types))})"
        )
    task: dict[str, Any] = {"task_key": _TASK_KEY_SPILL.sub("_", run_name)[:100]}
    task.update({name: body[name] for name in types})
    task.update({name: body[name] for name in _SINGLE_TASK_FIELDS if name in body})
    return task


def _listed_tasks(tasks: Any) -> tuple[TaskSpec, ...]:
    if tasks is None or (isinstance(tasks, list) and not tasks):
        raise _Reject("At least one task is required: tasks must be a non-empty list")
    if not isinstance(tasks, list):
        raise _Reject("Invalid value for field tasks: expected a list of tasks")
    if len(tasks) > MAX_TASKS:
        raise _Reject(f"A run can have at most {MAX_TASKS} tasks, got {len(tasks)}")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise _Reject(f"Invalid value for field tasks[{i}]: expected an object")
    return tuple(_task(f"tasks[{i}].", task) for i, task in enumerate(tasks))


def _task(where: str, task: dict[str, Any]) -> TaskSpec:
    """One task; ``where`` prefixes its fields in messages ("tasks[3]." or "" for the run)."""
    key = task.get("task_key")
    if key is None or key == "":
        raise _Reject(f"Task key must be specified: {where}task_key is missing")
    if not isinstance(key, str) or not _TASK_KEY_RE.match(key):
        place = where.rstrip(".") or "the run"
        raise _Reject(
            f"Invalid task_key {json.dumps(key)} in {place}: it must be 1 to 100 characters "
            "of letters, digits, '_', '-' and '.'"
        )
    types = _task_types(task)
    if len(types) != 1:
        found = ", ".join(sorted(types)) or "none"
        raise _Reject(
            f"Task {key} must specify exactly one task type (such as notebook_task or "
            f"spark_python_task); found: {found}"
        )
    task_type = types[0]
    payload = task[task_type]
    if not isinstance(payload, dict):
        raise _Reject(f"Invalid value for field {where}{task_type}: expected an object")
    for required in _REQUIRED_FIELDS.get(task_type, ()):
        if not isinstance(payload.get(required), str) or not payload[required]:
            raise _Reject(f"Task {key}: {task_type}.{required} is required")
    depends = task.get("depends_on", [])
    if not isinstance(depends, list) or not all(
        isinstance(d, dict) and isinstance(d.get("task_key"), str) for d in depends
    ):
        raise _Reject(f"Invalid value for field {where}depends_on: expected [{{task_key}}]")
    for_each = _for_each(key, where, payload) if task_type == FOR_EACH else None
    params = _emulator_params(key, task_type, payload)
    return TaskSpec(
        task_key=key,
        task_type=task_type,
        depends_on=tuple(d["task_key"] for d in depends),
        # A for-each task goes as its iterations go: as its nested task asks.
        asked_outcome=for_each.task.asked_outcome
        if for_each
        else _asked_outcome(key, params.get(RESULT_PARAM)),
        asked_seconds=for_each.task.asked_seconds
        if for_each
        else _asked_seconds(key, params.get(SECONDS_PARAM)),
        timeout_seconds=_non_negative_int(task, "timeout_seconds", prefix=where),
        body=task,
        for_each=for_each,
    )


def _for_each(key: str, where: str, payload: dict[str, Any]) -> ForEachSpec:
    try:
        return parse_for_each(key, where, payload, nested=_task)
    except ForEachRefused as exc:
        raise _Reject(str(exc)) from None


def _emulator_params(key: str, task_type: str, payload: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for mapping_name in ("base_parameters", "named_parameters"):
        mapping = payload.get(mapping_name)
        if mapping is None:
            continue
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise _Reject(f"Task {key}: {task_type}.{mapping_name} must map strings to strings")
        found.update(mapping)
    if task_type in _LIST_PARAM_TASKS and "parameters" in payload:
        entries = payload["parameters"]
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise _Reject(f"Task {key}: {task_type}.parameters must be a list of strings")
        for entry in entries:
            name, sep, value = entry.lstrip("-").partition("=")
            if sep and name in (RESULT_PARAM, SECONDS_PARAM):
                found[name] = value
    return found


def _asked_outcome(key: str, value: str | None) -> Outcome | None:
    if value is None:
        return None
    if value.upper() not in {o.value for o in ASKABLE}:
        allowed = ", ".join(sorted(o.value for o in ASKABLE))
        raise _Reject(f"Task {key}: {RESULT_PARAM} must be one of {allowed}, got {value!r}")
    return Outcome(value.upper())


def _asked_seconds(key: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise _Reject(f"Task {key}: {SECONDS_PARAM} must be a number of seconds, got {value!r}")
    return seconds


def _check_graph(tasks: tuple[TaskSpec, ...]) -> None:
    keys: set[str] = set()
    for task in tasks:
        if task.task_key in keys:
            raise _Reject(f"Task key {task.task_key} is duplicated: task keys must be unique")
        keys.add(task.task_key)
    deps = {t.task_key: t.depends_on for t in tasks}
    for task in tasks:
        for dep in task.depends_on:
            if dep not in keys:
                raise _Reject(f"Task {task.task_key} depends on {dep}, which is not in the run")
            if dep == task.task_key:
                raise _Reject(f"Task {task.task_key} cannot depend on itself")
    _check_acyclic(deps)


def _check_acyclic(deps: dict[str, tuple[str, ...]]) -> None:
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        # Iterative DFS with an explicit path, so a thousand-task chain cannot hit recursion.
        on_path: set[str] = {root}
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            if i < len(deps[node]):
                stack[-1] = (node, i + 1)
                nxt = deps[node][i]
                if nxt in on_path:
                    raise _Reject(f"The task dependencies contain a cycle through {nxt}")
                if nxt not in done:
                    on_path.add(nxt)
                    stack.append((nxt, 0))
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)


def _optional(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _Reject(f"Invalid value for field {name}: expected {what}")
    return value


def _non_negative_int(body: dict[str, Any], name: str, prefix: str = "") -> int:
    value = body.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Reject(f"Invalid value for field {prefix}{name}: expected a non-negative integer")
    return value
