"""A for-each task's nested task is a task with compute of its own: the guardrails see it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.runs.guardrails import check_guardrails
from gateway.settings import GuardrailSettings


def loop(**nested: Any) -> dict[str, Any]:
    task = {"task_key": "each", "notebook_task": {"notebook_path": "/x"}, **nested}
    return {"tasks": [{"task_key": "loop", "for_each_task": {"inputs": "[1, 2]", "task": task}}]}


@pytest.mark.parametrize(
    ("spec", "rules", "rule", "field"),
    [
        (
            loop(new_cluster={"num_workers": 9}),
            GuardrailSettings(max_workers=4),
            "max_workers",
            "spec.tasks[0].for_each_task.task.new_cluster.num_workers",
        ),
        (
            loop(new_cluster={"num_workers": 1}),
            GuardrailSettings(serverless_only=True),
            "serverless_only",
            "spec.tasks[0].for_each_task.task.new_cluster",
        ),
        (
            loop(existing_cluster_id="0101-x"),
            GuardrailSettings(serverless_only=True),
            "serverless_only",
            "spec.tasks[0].for_each_task.task.existing_cluster_id",
        ),
    ],
)
def test_a_nested_task_s_compute_is_checked(
    spec: dict[str, Any], rules: GuardrailSettings, rule: str, field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_guardrails(spec, rules)
    assert rule in str(caught.value)
    assert caught.value.field == field


def test_a_nested_task_within_the_rules_passes() -> None:
    check_guardrails(loop(new_cluster={"num_workers": 2}), GuardrailSettings(max_workers=4))
