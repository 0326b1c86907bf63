"""Spec guardrails (pure): each rule refuses naming itself and the offending field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.runs.guardrails import check_guardrails
from gateway.settings import GuardrailSettings


def task(**cluster: Any) -> dict[str, Any]:
    return {"tasks": [{"task_key": "t", "new_cluster": cluster}]}


RULES = GuardrailSettings(cluster_policy_ids=("p-1",), max_workers=4, node_types=("m5.large",))


@pytest.mark.parametrize(
    ("spec", "rules", "rule", "field"),
    [
        (task(num_workers=5), RULES, "max_workers", "spec.tasks[0].new_cluster.num_workers"),
        (
            {"job_clusters": [{"new_cluster": {"autoscale": {"max_workers": 9}}}]},
            RULES,
            "max_workers",
            "spec.job_clusters[0].new_cluster.autoscale.max_workers",
        ),
        (task(policy_id="p-2"), RULES, "cluster_policy_ids", "spec.tasks[0].new_cluster.policy_id"),
        (
            task(num_workers=1),
            GuardrailSettings(required_cluster_policy=True),
            "required_cluster_policy",
            "spec.tasks[0].new_cluster.policy_id",
        ),
        (
            task(driver_node_type_id="x9.huge"),
            RULES,
            "node_types",
            "spec.tasks[0].new_cluster.driver_node_type_id",
        ),
        (
            task(num_workers=1),
            GuardrailSettings(serverless_only=True),
            "serverless_only",
            "spec.tasks[0].new_cluster",
        ),
        (
            {"tasks": [{"task_key": "t", "existing_cluster_id": "c-1"}]},
            GuardrailSettings(serverless_only=True),
            "serverless_only",
            "spec.tasks[0].existing_cluster_id",
        ),
        # The single-task shape's compute is top-level: the rules reach it there too.
        (
            {"notebook_task": {"notebook_path": "/x"}, "new_cluster": {"num_workers": 9}},
            RULES,
            "max_workers",
            "spec.new_cluster.num_workers",
        ),
        (
            {"spark_jar_task": {}, "existing_cluster_id": "c-1"},
            GuardrailSettings(serverless_only=True),
            "serverless_only",
            "spec.existing_cluster_id",
        ),
    ],
)
def test_a_broken_rule_is_named_with_its_field(
    spec: dict[str, Any], rules: GuardrailSettings, rule: str, field: str
) -> None:
    """The refusal's message names the rule, and its field points at the offending value."""
    with pytest.raises(InvalidRequest) as caught:
        check_guardrails(spec, rules)
    assert caught.value.field == field
    assert f"guardrail {rule}" in caught.value.message


@pytest.mark.parametrize(
    "spec",
    [
        task(num_workers=4, policy_id="p-1", node_type_id="m5.large"),
        {"tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/x"}}]},
        {},
    ],
)
def test_a_spec_within_the_rules_passes(spec: dict[str, Any]) -> None:
    """A spec that keeps every rule (or asks for no cluster) is accepted as it is."""
    check_guardrails(spec, RULES)


class _Untouchable(dict[str, Any]):
    """A spec that fails any test that reads it."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f"read {key!r}")

    def get(self, key: str, default: Any = None) -> Any:
        raise AssertionError(f"read {key!r}")

    def __iter__(self) -> Any:
        raise AssertionError("iterated")


def test_with_no_rules_the_spec_is_not_walked() -> None:
    """A namespace without guardrails costs no walk of its specs: the spec is never read."""
    check_guardrails(_Untouchable(tasks=[]), GuardrailSettings())


@pytest.mark.parametrize(
    "rules",
    [
        GuardrailSettings(cluster_policy_ids=("p-1",)),
        GuardrailSettings(required_cluster_policy=True),
        GuardrailSettings(max_workers=4),
        GuardrailSettings(node_types=("m5.large",)),
        GuardrailSettings(serverless_only=True),
    ],
)
def test_any_one_rule_makes_the_spec_read(rules: GuardrailSettings) -> None:
    """Each rule alone is enough for the spec to be checked (here: read, and found out)."""
    with pytest.raises(AssertionError, match=r"read|iterated"):
        check_guardrails(_Untouchable(tasks=[]), rules)
