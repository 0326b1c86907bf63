"""runs/submit validation: Databricks error codes for every malformed spec, pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.emulator.databricks.lifecycle import Outcome
from gateway.emulator.databricks.validation import Invalid, SubmitSpec, parse_submit

NOTEBOOK = {"notebook_path": "/Shared/etl"}


def task(key: str = "main", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"task_key": key}
    body.update(fields or {"notebook_task": NOTEBOOK})
    return body


def submit(**body: Any) -> SubmitSpec | Invalid:
    return parse_submit(json.dumps(body))


def test_a_minimal_spec_is_accepted() -> None:
    """One task with a task type is a valid run; run_name defaults to Untitled."""
    spec = submit(tasks=[task()])
    assert isinstance(spec, SubmitSpec)
    assert (spec.run_name, spec.timeout_seconds, spec.idempotency_token) == ("Untitled", 0, None)
    assert spec.tasks[0].task_type == "notebook_task"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "failed to parse given JSON"),
        ("[1, 2]", "expected a map"),
        ('"tasks"', "expected a map"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_malformed(text: str, fragment: str) -> None:
    """Unparseable bodies get MALFORMED_REQUEST."""
    result = parse_submit(text)
    assert isinstance(result, Invalid)
    assert result.error_code == "MALFORMED_REQUEST"
    assert fragment in result.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "At least one task is required"),
        ({"tasks": []}, "At least one task is required"),
        ({"tasks": {"task_key": "a"}}, "expected a list"),
        ({"tasks": ["a"]}, "tasks[0]: expected an object"),
        ({"tasks": [{"notebook_task": NOTEBOOK}]}, "Task key must be specified"),
        ({"tasks": [task("has space")]}, "Invalid task_key"),
        ({"tasks": [task("x" * 101)]}, "Invalid task_key"),
        ({"tasks": [task(), task()]}, "Task key main is duplicated"),
        ({"tasks": [{"task_key": "a"}]}, "exactly one task type"),
        (
            {"tasks": [task(notebook_task=NOTEBOOK, spark_python_task={"python_file": "x.py"})]},
            "exactly one task type",
        ),
        ({"tasks": [task(notebook_task={})]}, "notebook_task.notebook_path is required"),
        ({"tasks": [task(python_wheel_task={"package_name": "p"})]}, "entry_point is required"),
        ({"tasks": [task(notebook_task="x")]}, "expected an object"),
        (
            {"tasks": [task(depends_on=[{"task_key": "ghost"}], notebook_task=NOTEBOOK)]},
            "depends on ghost",
        ),
        (
            {"tasks": [task(depends_on=[{"task_key": "main"}], notebook_task=NOTEBOOK)]},
            "cannot depend on itself",
        ),
        (
            {
                "tasks": [
                    task("a", depends_on=[{"task_key": "b"}], notebook_task=NOTEBOOK),
                    task("b", depends_on=[{"task_key": "a"}], notebook_task=NOTEBOOK),
                ]
            },
            "cycle",
        ),
        ({"tasks": [task(depends_on="a", notebook_task=NOTEBOOK)]}, "depends_on"),
        ({"tasks": [task()], "idempotency_token": "t" * 65}, "at most 64 characters"),
        ({"tasks": [task()], "idempotency_token": 42}, "idempotency_token"),
        ({"tasks": [task()], "run_name": ["x"]}, "run_name"),
        ({"tasks": [task()], "run_name": "é" * 2049}, "4096 bytes"),
        ({"tasks": [task()], "timeout_seconds": -1}, "timeout_seconds"),
        ({"tasks": [task()], "timeout_seconds": "60"}, "timeout_seconds"),
        ({"tasks": [task()], "timeout_seconds": True}, "timeout_seconds"),
        ({"tasks": [task()], "queue": {"enabled": "yes"}}, "queue.enabled"),
        (
            {"tasks": [task(notebook_task={**NOTEBOOK, "base_parameters": {"a": 1}})]},
            "base_parameters must map strings to strings",
        ),
        (
            {"tasks": [task(spark_python_task={"python_file": "x.py", "parameters": "a"})]},
            "parameters must be a list of strings",
        ),
    ],
)
def test_an_invalid_spec_is_refused_with_invalid_parameter_value(
    body: dict[str, Any], fragment: str
) -> None:
    """Each kind of bad spec is a 400 INVALID_PARAMETER_VALUE naming what is wrong."""
    result = parse_submit(json.dumps(body))
    assert isinstance(result, Invalid)
    assert result.error_code == "INVALID_PARAMETER_VALUE"
    assert fragment in result.message


def test_a_64_character_token_is_accepted() -> None:
    """The idempotency token limit is inclusive."""
    spec = submit(tasks=[task()], idempotency_token="t" * 64)
    assert isinstance(spec, SubmitSpec)
    assert spec.idempotency_token == "t" * 64


@pytest.mark.parametrize(
    ("task_body", "outcome", "seconds"),
    [
        (
            {
                "notebook_task": {
                    **NOTEBOOK,
                    "base_parameters": {"lakegate_emulator_result": "FAILED"},
                }
            },
            Outcome.FAILED,
            None,
        ),
        (
            {
                "python_wheel_task": {
                    "package_name": "p",
                    "entry_point": "main",
                    "named_parameters": {
                        "lakegate_emulator_result": "timedout",
                        "lakegate_emulator_seconds": "2.5",
                    },
                }
            },
            Outcome.TIMEDOUT,
            2.5,
        ),
        (
            {
                "spark_python_task": {
                    "python_file": "x.py",
                    "parameters": ["--date", "lakegate_emulator_result=INTERNAL_ERROR"],
                }
            },
            Outcome.INTERNAL_ERROR,
            None,
        ),
        (
            {
                "python_wheel_task": {
                    "package_name": "p",
                    "entry_point": "main",
                    "parameters": ["--lakegate_emulator_seconds=0"],
                }
            },
            None,
            0.0,
        ),
        ({"notebook_task": NOTEBOOK}, None, None),
    ],
)
def test_a_task_can_ask_for_its_outcome_and_duration(
    task_body: dict[str, Any], outcome: Outcome | None, seconds: float | None
) -> None:
    """lakegate_emulator_result/_seconds are read from parameter maps and name=value lists."""
    spec = submit(tasks=[task(**task_body)])
    assert isinstance(spec, SubmitSpec)
    assert (spec.tasks[0].asked_outcome, spec.tasks[0].asked_seconds) == (outcome, seconds)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lakegate_emulator_result": "EXPLODED"}, "must be one of"),
        ({"lakegate_emulator_result": "USER_CANCELED"}, "must be one of"),
        ({"lakegate_emulator_seconds": "soon"}, "must be a number"),
        ({"lakegate_emulator_seconds": "-1"}, "must be a number"),
        ({"lakegate_emulator_seconds": "nan"}, "must be a number"),
    ],
)
def test_a_bad_emulator_parameter_is_refused(params: dict[str, str], fragment: str) -> None:
    """Unknown outcomes and non-numeric durations are a 400, not silently ignored."""
    result = submit(tasks=[task(notebook_task={**NOTEBOOK, "base_parameters": params})])
    assert isinstance(result, Invalid)
    assert fragment in result.message


def test_unknown_task_types_are_accepted() -> None:
    """Newer task types (any *_task key) pass, as new SDKs add them."""
    spec = submit(tasks=[task(dashboard_task={"dashboard_id": "d"})])
    assert isinstance(spec, SubmitSpec)
    assert spec.tasks[0].task_type == "dashboard_task"


def test_queue_and_task_timeouts_are_read() -> None:
    """queue.enabled and per-task timeout_seconds are carried into the spec."""
    spec = submit(
        tasks=[task(notebook_task=NOTEBOOK, timeout_seconds=30)],
        queue={"enabled": True},
        timeout_seconds=60,
    )
    assert isinstance(spec, SubmitSpec)
    assert (spec.queue_enabled, spec.timeout_seconds, spec.tasks[0].timeout_seconds) == (
        True,
        60,
        30,
    )
