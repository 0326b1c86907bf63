"""For each tasks: one nested task run once per element of ``inputs``, as Databricks runs it.

A ``for_each_task`` holds ``inputs`` (a JSON array written as a string), ``task`` (the nested
task: a task key and exactly one task type, never another for-each) and ``concurrency``
(default 1). Each element becomes an iteration: a task run of its own, with its own run id,
whose spec is the nested task with ``{{input}}`` (and ``{{input.<key>}}`` for objects)
replaced by the element. The job run lists only the for-each task, with iteration counts in
``for_each_task.stats``; runs/get of the for-each task's run id lists its ``iterations``,
paged at 100 under 2.2 like a run's tasks (the for-each task itself repeating on each page),
whole under 2.0 and 2.1.

Iterations share their for-each task's course in the emulator (it runs them all at once,
whatever ``concurrency`` says, which only bounds Databricks' parallelism), so a nested task
asking to fail fails every iteration and the for-each task with them.

The emulator cannot resolve ``{{tasks.<key>.values...}}`` or ``{{job.parameters...}}``
references in ``inputs``: it refuses them, saying so, rather than iterating over nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.emulator.databricks.lifecycle import Snapshot
    from gateway.emulator.databricks.validation import TaskSpec

FOR_EACH = "for_each_task"
# Unverified: the highest concurrency Databricks accepts (the UI offers up to 100).
MAX_CONCURRENCY = 100
# Unverified: how many iterations Databricks allows; the emulator keeps them in memory.
MAX_ITERATIONS = 5000
_INPUT_REF = re.compile(r"\{\{\s*input(?:\.([\w\-]+))?\s*\}\}")


class ForEachRefused(Exception):
    """A for_each_task Databricks would refuse (INVALID_PARAMETER_VALUE)."""


@dataclass(frozen=True)
class ForEachSpec:
    inputs: tuple[Any, ...]
    concurrency: int
    task: TaskSpec

    def iteration_specs(self) -> tuple[TaskSpec, ...]:
        """The nested task once per input, its ``{{input}}`` references resolved."""
        return tuple(replace(self.task, body=_resolved(self.task.body, v)) for v in self.inputs)


def parse_for_each(
    key: str, where: str, payload: dict[str, Any], nested: Callable[[str, dict[str, Any]], TaskSpec]
) -> ForEachSpec:
    """The for-each task ``key``'s payload; ``nested`` parses its nested task."""
    inputs = _inputs(key, where, payload.get("inputs"))
    concurrency = payload.get("concurrency", 1)
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ForEachRefused(
            f"Invalid value for field {where}{FOR_EACH}.concurrency: it must be an integer "
            f"from 1 to {MAX_CONCURRENCY}"
        )
    task = payload.get("task")
    if not isinstance(task, dict):
        raise ForEachRefused(f"Task {key}: {FOR_EACH}.task (the nested task) is required")
    if FOR_EACH in task:
        raise ForEachRefused(
            f"Task {key}: the nested task of a for each task cannot be another for each task"
        )
    return ForEachSpec(inputs, concurrency, nested(f"{where}{FOR_EACH}.task.", task))


def _inputs(key: str, where: str, raw: Any) -> tuple[Any, ...]:
    field = f"{where}{FOR_EACH}.inputs"
    if not isinstance(raw, str) or not raw.strip():
        raise ForEachRefused(f"Task {key}: {field} is required: a JSON array, as a string")
    if "{{" in raw and not raw.lstrip().startswith("["):
        raise ForEachRefused(
            f"Task {key}: {field} refers to {raw.strip()}; the lakegate emulator iterates "
            "literal JSON arrays only"
        )
    try:
        values = json.loads(raw)
    except ValueError:
        raise ForEachRefused(f"Task {key}: {field} is not valid JSON") from None
    if not isinstance(values, list):
        raise ForEachRefused(f"Task {key}: {field} must be a JSON array")
    if len(values) > MAX_ITERATIONS:
        raise ForEachRefused(
            f"Task {key}: {field} has {len(values)} elements; at most {MAX_ITERATIONS} "
            "iterations are allowed"
        )
    return tuple(values)


def _resolved(value: Any, element: Any) -> Any:
    if isinstance(value, str):
        return _INPUT_REF.sub(lambda m: _text(element, m.group(1)), value)
    if isinstance(value, dict):
        return {k: _resolved(v, element) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, element) for v in value]
    return value


def _text(element: Any, field: str | None) -> str:
    if field is not None:
        element = element.get(field, "") if isinstance(element, dict) else ""
    return element if isinstance(element, str) else json.dumps(element)


def stats(count: int, snap: Snapshot) -> dict[str, Any]:
    """``for_each_task.stats``: every iteration is where its for-each task is."""
    done = count if snap.terminal else 0
    succeeded = done if snap.result_state == "SUCCESS" else 0
    return {
        "task_run_stats": {
            "total_iterations": count,
            "scheduled_iterations": count,
            "active_iterations": 0 if snap.terminal else count,
            "completed_iterations": done,
            "succeeded_iterations": succeeded,
            "failed_iterations": done - succeeded,
        }
    }
