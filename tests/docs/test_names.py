"""The names the guides tell operators to look for exist: metrics on /metrics, log events in
the gateway's code, problem types in the error tree, and the Secrets the README says the
shipped RBAC lets lakegate read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import gateway
import gateway.callers.reviews
import gateway.callers.salted
from gateway import errors
from gateway.api.problems import slug
from gateway.metrics import Metrics
from tests.docs.blocks import DOCS, README, ROOT

GUIDES = [README, *sorted(DOCS.glob("*.md"))]
METRIC = re.compile(r"\blakegate_[a-z0-9_]+\b")
LOG_EVENT = re.compile(r"log `([a-z_]+)`")
PROBLEMS = re.compile(r"problems? `([a-z-]+)`((?:, `[a-z-]+`)*)")
EVENT_CALL = re.compile(
    r"\b\w*(?:log|logger|audit)\.(?:debug|info|warning|error|exception|critical)\(\s*\"([a-z_]+)\""
)
# Problem types that are not exception classes: aiohttp's own refusals and the fallbacks.
# The emulator's task parameters look like metric names.
EMULATOR = "lakegate_emulator_"
OTHER_PROBLEMS = frozenset({"internal-error", "unparsable-request", "not-found"})


def _text(path: Path) -> str:
    return path.read_text("utf-8")


def _exported() -> set[str]:
    names: set[str] = set()
    metrics = Metrics()
    # The ledger's families join once a store opens (gateway/app/resources.py).
    metrics.watch_ledger(lambda: (0, 0))
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        if family.type == "info":
            names.add(family.name + "_info")
    return names


def _events() -> set[str]:
    package = Path(gateway.__file__).parent
    return {
        event
        for path in package.rglob("*.py")
        if "emulator" not in path.parts
        for event in EVENT_CALL.findall(path.read_text("utf-8"))
    }


def _problem_types() -> set[str]:
    # gateway.callers.reviews and .salted are imported for the errors they define there.
    found = set(OTHER_PROBLEMS)
    stack: list[type[BaseException]] = [errors.LakegateError]
    while stack:
        cls = stack.pop()
        found.add(slug(cls.__name__))
        stack.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_metric_named_is_exported(path: Path) -> None:
    """A metric the docs name that /metrics lacks would send an operator nowhere."""
    exported = _exported()
    named = set(METRIC.findall(_text(path))) - {
        "lakegate_emulator_result",
        "lakegate_emulator_seconds",
        "lakegate_emulator_output",
    }
    assert named - exported == set(), f"not exported: {sorted(named - exported)}"


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_log_event_named_is_logged(path: Path) -> None:
    """`log EVENT` in the guides is an event name the gateway's code logs."""
    named = set(LOG_EVENT.findall(_text(path)))
    assert named - _events() == set(), f"never logged: {sorted(named - _events())}"


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_problem_type_named_exists(path: Path) -> None:
    """`problem TYPE` in the guides is the slug of an error the API answers with."""
    named = set()
    for first, rest in PROBLEMS.findall(_text(path)):
        named.add(first)
        named.update(re.findall(r"`([a-z-]+)`", rest))
    known = _problem_types()
    assert named - known == set(), f"no such problem type: {sorted(named - known)}"


def test_the_troubleshooting_table_names_something_to_look_at_per_symptom() -> None:
    """Each symptom row points at a metric, a log event, a problem type or a check."""
    guide = _text(DOCS / "operator-guide.md")
    table = guide.split("## Troubleshooting by symptom", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 15
    for row in rows[1:]:
        cells = row.split(" | ")
        assert "`" in cells[1] or "stderr" in cells[1], row


def test_the_shipped_tenant_role_reads_the_databricks_and_webhook_secrets() -> None:
    """The README says the shipped role names lakegate-webhook beside the two Databricks
    credential Secrets, and that another name needs a Role of the namespace's own."""
    role = yaml.safe_load(_text(ROOT / "deploy" / "base" / "rbac-tenant.yaml"))
    names = {
        name
        for rule in role["rules"]
        if "secrets" in rule["resources"]
        for name in rule.get("resourceNames", [])
    }
    assert names == {"databricks-oauth", "databricks-token", "lakegate-webhook"}
    said = " ".join(_text(README).split())
    assert (
        "names `lakegate-webhook` for it beside `databricks-oauth` and `databricks-token`" in said
    )
    assert "Another name needs a Role of the namespace's own" in said
