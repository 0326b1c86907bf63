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


SINGLE_TASK_TYPES = {
    "notebook_task": NOTEBOOK,
    "spark_python_task": {"python_file": "jobs/etl.py", "parameters": ["--date", "2026-01-01"]},
    "spark_jar_task": {"main_class_name": "org.example.Main", "parameters": ["1"]},
    "python_wheel_task": {"package_name": "etl", "entry_point": "main"},
    "spark_submit_task": {"parameters": ["--class", "org.example.Main", "dbfs:/etl.jar"]},
    "sql_task": {"warehouse_id": "w1", "query": {"query_id": "q1"}},
    "dbt_task": {"commands": ["dbt run"]},
    "pipeline_task": {"pipeline_id": "p1"},
    "run_job_task": {"job_id": 42},
}


@pytest.mark.parametrize("task_type", sorted(SINGLE_TASK_TYPES))
def test_a_top_level_task_type_is_a_run_of_one_task(task_type: str) -> None:
    """The single-task shape (no tasks[]) becomes one task holding the type and compute."""
    compute = {"new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1}}
    libraries = [{"pypi": {"package": "requests==2.32.3"}}]
    spec = submit(
        run_name="nightly",
        libraries=libraries,
        **{task_type: SINGLE_TASK_TYPES[task_type]},
        **compute,
    )
    assert isinstance(spec, SubmitSpec)
    assert spec.single_task is True
    [only] = spec.tasks
    assert (only.task_key, only.task_type) == ("nightly", task_type)
    assert only.body == {
        "task_key": "nightly",
        task_type: SINGLE_TASK_TYPES[task_type],
        **compute,
        "libraries": libraries,
    }


@pytest.mark.parametrize(
    ("run_name", "task_key"),
    [
        (None, "Untitled"),
        ("", "Untitled"),
        ("team-a/etl 42", "team-a_etl_42"),
        ("x" * 150, "x" * 100),
    ],
)
def test_the_single_task_is_named_after_the_run(run_name: str | None, task_key: str) -> None:
    """Its task_key is the run name in the task-key alphabet, at most 100 characters."""
    spec = submit(run_name=run_name, existing_cluster_id="0101-abc", notebook_task=NOTEBOOK)
    assert isinstance(spec, SubmitSpec)
    assert spec.tasks[0].task_key == task_key


def test_a_single_task_asks_for_its_outcome_like_any_task() -> None:
    """The emulator's outcome parameters work in the single-task shape too."""
    params = {"lakegate_emulator_result": "FAILED", "lakegate_emulator_seconds": "3"}
    spec = submit(notebook_task={**NOTEBOOK, "base_parameters": params})
    assert isinstance(spec, SubmitSpec)
    assert (spec.tasks[0].asked_outcome, spec.tasks[0].asked_seconds) == (Outcome.FAILED, 3.0)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"tasks": [task()], "notebook_task": NOTEBOOK}, "not both"),
        (
            {"notebook_task": NOTEBOOK, "spark_python_task": {"python_file": "x.py"}},
            "exactly one task type",
        ),
        ({"notebook_task": {}}, "notebook_task.notebook_path is required"),
        ({"notebook_task": "x"}, "Invalid value for field notebook_task"),
    ],
)
def test_a_bad_single_task_body_is_refused(body: dict[str, Any], fragment: str) -> None:
    """tasks[] with a top-level task type, or a bad top-level task, is INVALID_PARAMETER_VALUE."""
    result = parse_submit(json.dumps(body))
    assert isinstance(result, Invalid)
    assert result.error_code == "INVALID_PARAMETER_VALUE"
    assert fragment in result.message


def test_an_empty_tasks_list_beside_a_task_type_is_the_single_task_shape() -> None:
    """tasks: [] says no tasks, so a top-level task type alone makes the run."""
    spec = submit(tasks=[], notebook_task=NOTEBOOK)
    assert isinstance(spec, SubmitSpec)
    assert [t.task_type for t in spec.tasks] == ["notebook_task"]


def test_null_fields_count_as_absent_at_every_depth() -> None:
    """Nulls, as prefect-databricks sends them, are dropped before anything is read."""
    spec = submit(
        run_name=None,
        timeout_seconds=None,
        idempotency_token=None,
        queue={"enabled": None},
        git_source=None,
        notebook_task=None,
        spark_python_task=None,
        tasks=[
            {
                "task_key": "main",
                "notebook_task": {"notebook_path": "/Shared/etl", "base_parameters": None},
                "spark_python_task": None,
                "spark_jar_task": None,
                "existing_cluster_id": None,
                "new_cluster": {"spark_version": "15.4.x-scala2.12", "autoscale": None},
                "depends_on": None,
                "timeout_seconds": None,
                "libraries": None,
            }
        ],
    )
    assert isinstance(spec, SubmitSpec)
    assert (spec.run_name, spec.timeout_seconds, spec.queue_enabled) == ("Untitled", 0, None)
    assert spec.single_task is False
    assert spec.body == {"queue": {}, "tasks": [spec.tasks[0].body]}
    assert spec.tasks[0].body == {
        "task_key": "main",
        "notebook_task": {"notebook_path": "/Shared/etl"},
        "new_cluster": {"spark_version": "15.4.x-scala2.12"},
    }


def test_null_list_items_are_kept() -> None:
    """Only object members are dropped; a null inside a list is still refused."""
    result = submit(tasks=[task(spark_python_task={"python_file": "x.py", "parameters": [None]})])
    assert isinstance(result, Invalid)
    assert "parameters must be a list of strings" in result.message


def test_a_null_task_key_is_a_missing_task_key() -> None:
    """task_key: null is the same refusal as no task_key."""
    result = submit(tasks=[{"task_key": None, "notebook_task": NOTEBOOK}])
    assert isinstance(result, Invalid)
    assert "Task key must be specified" in result.message
