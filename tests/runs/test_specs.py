"""The shape of a submission (both runs/submit forms) and nulls read as absent. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.runs.specs import shape_problem, task_entries, without_nulls

NOTEBOOK = {"notebook_path": "/Shared/etl"}


def test_nulls_are_dropped_at_every_depth_and_list_items_kept() -> None:
    """A null member is unset wherever it is; a null list item is a position, so it stays."""
    body = {
        "run_name": None,
        "tasks": [{"task_key": "a", "notebook_task": NOTEBOOK, "spark_python_task": None}],
        "new_cluster": {"spark_conf": None, "num_workers": 2, "tags": [None, {"x": None}]},
    }
    assert without_nulls(body) == {
        "tasks": [{"task_key": "a", "notebook_task": NOTEBOOK}],
        "new_cluster": {"num_workers": 2, "tags": [None, {}]},
    }


def test_dropping_nulls_copies_and_survives_deep_nesting() -> None:
    """The input is left as it was, and nesting far past the recursion limit is no error."""
    body: dict[str, Any] = {"a": None, "b": 1}
    assert without_nulls(body) == {"b": 1}
    assert body == {"a": None, "b": 1}
    deep: Any = None
    for _ in range(5000):
        deep = {"x": deep}
    assert isinstance(without_nulls(deep), dict)


@pytest.mark.parametrize(
    "spec",
    [
        {"tasks": [{"task_key": "a", "notebook_task": NOTEBOOK}]},
        # The single-task shape: Airflow's classic operators and flytekit send it.
        {"notebook_task": NOTEBOOK, "existing_cluster_id": "0101-abc"},
        {"spark_python_task": {"python_file": "x.py"}, "new_cluster": {}, "tasks": []},
        {"some_future_task": {}},
    ],
)
def test_both_forms_of_runs_submit_pass(spec: dict[str, Any]) -> None:
    """tasks[], or exactly one top-level task type: the shapes Databricks accepts."""
    assert shape_problem(spec) is None


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"run_name": "x"}, "non-empty 'tasks'"),
        ({"tasks": []}, "non-empty 'tasks'"),
        ({"tasks": ["a"]}, "each an object"),
        ({"tasks": [{}], "notebook_task": NOTEBOOK}, "both 'tasks'"),
        ({"notebook_task": NOTEBOOK, "spark_jar_task": {}}, "2 top-level task types"),
        ({"notebook_task": "/Shared/etl"}, "'notebook_task' must be an object"),
    ],
)
def test_other_shapes_are_refused_saying_why(spec: dict[str, Any], needle: str) -> None:
    """No task, both forms, two types, or a type that is not an object: a message that says so."""
    problem = shape_problem(spec)
    assert problem is not None
    assert needle in problem


def test_a_null_task_type_is_no_task_type() -> None:
    """prefect-databricks' unset task types (null) leave one real task type: a single task."""
    spec = without_nulls({"notebook_task": NOTEBOOK, "spark_jar_task": None, "tasks": None})
    assert shape_problem(spec) is None


def test_task_entries_name_each_task_or_the_single_task_spec_itself() -> None:
    """What reads a task's compute (the guardrails) sees both shapes, with the field path."""
    multi = {"tasks": [{"task_key": "a"}, "junk", {"task_key": "b"}]}
    assert [path for path, _ in task_entries(multi)] == ["spec.tasks[0]", "spec.tasks[2]"]
    single = {"notebook_task": NOTEBOOK, "new_cluster": {"num_workers": 1}}
    assert task_entries(single) == [("spec", single)]
    assert task_entries({"run_name": "x"}) == []
