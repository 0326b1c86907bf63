"""What a command runs with, read before the loop: here, how a file's JSON becomes a body."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cli.invocation import as_submit_body


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"tasks": [], "run_name": "x"}, {"spec": {"tasks": [], "run_name": "x"}}),
        (
            {"spec": {"tasks": []}, "labels": {"a": "b"}},
            {"spec": {"tasks": []}, "labels": {"a": "b"}},
        ),
        ({"spark_python_task": {}}, {"spec": {"spark_python_task": {}}}),
        ({"tasks": [], "spec": {"x": 1}}, {"spec": {"tasks": [], "spec": {"x": 1}}}),
    ],
)
def test_as_submit_body(payload: dict[str, Any], body: dict[str, Any]) -> None:
    """Only a payload with a spec object and no top-level tasks is taken as a whole body."""
    assert as_submit_body(payload) == body
