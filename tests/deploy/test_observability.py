"""The Grafana dashboard and the Prometheus rules use only metrics the gateway exports, and
cover what an operator watches; the rules are well-formed alerting rules.

The rules' YAML shape, PromQL brackets, durations and metric names are checked here in
Python; ``promtool check rules`` and ``promtool check metrics`` (a real /metrics scrape) run
too, promtool being installed by ``scripts/ensure-tools`` (see ``tests.deploy.tools``).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import Overrides, create_app
from gateway.metrics import Metrics
from gateway.settings import Settings
from tests.deploy.manifests import DEPLOY, load_docs
from tests.deploy.tools import tool
from tests.fixtures.gateway import StackFactory

DASHBOARD = DEPLOY / "dashboards" / "lakegate.json"
RULES = DEPLOY / "components" / "monitoring" / "prometheusrule.yaml"
METRIC = re.compile(r"\blakegate_[a-z0-9_]+\b")
DURATION = re.compile(r"^\d+[smhd]$")
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
# What the issue asks the dashboard and the alerts to show, by the metric that shows it.
WATCHED = {
    "submissions by namespace": "lakegate_namespace_submissions_total",
    "refusals by namespace and reason": "lakegate_refusals_total",
    "run durations by state": "lakegate_run_duration_seconds_bucket",
    "terminal states by namespace": "lakegate_runs_terminal_total",
    "poll lag": "lakegate_poll_lag_seconds_bucket",
    "token endpoint errors by identity kind": "lakegate_token_endpoint_errors_total",
    "tenants refused": "lakegate_tenants_refused",
    "webhook lag": "lakegate_webhook_lag_seconds_bucket",
    "webhook dead events": "lakegate_webhook_queue",
    "quota usage": "lakegate_runs",
    "ledger health": "lakegate_ledger_up",
    "build": "lakegate_build_info",
    "Git credential refreshes": "lakegate_git_credential_refreshes_total",
}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def _rules() -> list[dict[str, Any]]:
    (rule,) = load_docs(RULES)
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def _names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}


async def _scrape(tmp_path: Path) -> str:
    settings = Settings.model_validate(
        {
            "store": {"sqlite_path": str(tmp_path / "ledger.db")},
            "callers": {"methods": ["none"]},
            "workspaces": {"prod": {"host": "https://prod.cloud.databricks.com"}},
        }
    )
    app = create_app(settings, Overrides(run_poller=False, run_dispatcher=False))
    async with TestClient(TestServer(app)) as client:
        return await (await client.get("/metrics")).text()


@pytest.fixture
async def exported(tmp_path: Path) -> set[str]:
    """Every series name a running gateway's /metrics can carry, from its TYPE lines."""
    text = await _scrape(tmp_path)
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            base = family.removesuffix("_total") if kind == "counter" else family
            names.update(base + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",)))
    return names


async def test_every_metric_the_dashboard_uses_is_exported(exported: set[str]) -> None:
    """A typo or a renamed metric would leave a panel empty for good."""
    missing = _names(_dashboard_exprs()) - exported
    assert not missing, f"the dashboard uses metrics /metrics does not have: {sorted(missing)}"


async def test_every_metric_the_rules_use_is_exported(exported: set[str]) -> None:
    """An alert on a metric that does not exist never fires."""
    missing = _names([r["expr"] for r in _rules()]) - exported
    assert not missing, f"the rules use metrics /metrics does not have: {sorted(missing)}"


@pytest.mark.parametrize("what", sorted(WATCHED))
def test_the_dashboard_shows_what_operators_watch(what: str) -> None:
    """Each area the issue names has a panel over its metric."""
    assert WATCHED[what] in _names(_dashboard_exprs()), f"no panel shows {what}"


def test_the_rules_cover_the_failures_an_operator_is_paged_for() -> None:
    """Ledger, refused tenants, poll lag, token errors, dead webhooks and being down."""
    used = _names([r["expr"] for r in _rules()])
    for metric in (
        "lakegate_ledger_up",
        "lakegate_tenants_refused",
        "lakegate_poll_lag_seconds_bucket",
        "lakegate_token_endpoint_errors_total",
        "lakegate_webhook_queue",
        "lakegate_build_info",
        "lakegate_git_credential_refresh_failures_total",
    ):
        assert metric in used, f"no alert over {metric}"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: str(r.get("alert")))
def test_each_rule_is_a_well_formed_alert(rule: dict[str, Any]) -> None:
    """An alert name, a PromQL expression with balanced brackets, a duration, a severity and
    a summary: what `promtool check rules` would refuse, checked without it."""
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
    assert re.fullmatch(r"Lakegate[A-Za-z]+", rule["alert"])
    assert DURATION.match(rule["for"])
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"]
    expr = rule["expr"]
    depth = {"(": 0, "[": 0, "{": 0}
    closers = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in depth:
            depth[char] += 1
        elif char in closers:
            depth[closers[char]] -= 1
            assert depth[closers[char]] >= 0, f"{rule['alert']}: unbalanced {char}"
    assert not any(depth.values()), f"{rule['alert']}: unclosed bracket"


def test_a_terminal_transition_counts_for_its_namespace_and_its_duration() -> None:
    """observe_transition feeds the per-namespace counter and the duration histogram; a
    non-terminal one only the transitions counter."""
    metrics = Metrics()
    metrics.observe_transition("team-a", "RUNNING", False, 3.0)
    metrics.observe_transition("team-a", "SUCCEEDED", True, 42.0)
    sample = metrics.registry.get_sample_value
    assert sample("lakegate_run_transitions_total", {"state": "RUNNING"}) == 1
    assert (
        sample("lakegate_runs_terminal_total", {"namespace": "team-a", "state": "SUCCEEDED"}) == 1
    )
    assert (
        sample("lakegate_runs_terminal_total", {"namespace": "team-a", "state": "RUNNING"}) is None
    )
    assert sample("lakegate_run_duration_seconds_sum", {"state": "SUCCEEDED"}) == 42.0


def test_build_info_names_the_version() -> None:
    """lakegate_build_info carries the package version."""
    from gateway import __version__

    sample = Metrics().registry.get_sample_value
    assert sample("lakegate_build_info", {"version": __version__, "python": _python()}) == 1


def _python() -> str:
    import platform

    return platform.python_version()


def _promtool() -> str:
    return tool("promtool", package="prometheus")


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    """promtool loads the PrometheusRule's groups as Prometheus would."""
    promtool = _promtool()
    (rule,) = load_docs(RULES)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def _lint(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_promtool_checks_the_metrics(tmp_path: Path) -> None:
    """A fresh gateway's /metrics passes promtool's exposition lint."""
    promtool = _promtool()
    done = await _lint(promtool, await _scrape(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


async def test_promtool_checks_the_metrics_of_a_gateway_that_ran_runs(
    gateway_stack_factory: StackFactory,
) -> None:
    """After runs went through (every labelled family and histogram now has series), the
    scrape still passes promtool's lint."""
    promtool = _promtool()
    stack = await gateway_stack_factory(namespaces=2)
    spec = {
        "run_name": "scraped",
        "tasks": [
            {
                "task_key": "main",
                "notebook_task": {"notebook_path": "/Jobs/x"},
                "existing_cluster_id": "0101-000000-demo",
            }
        ],
    }
    async with stack.client() as client:
        for namespace in ("team-00", "team-01"):
            run = (await client.submit(namespace, spec)).run
            await client.wait(namespace, run["id"], poll_interval=0.1)
    async with stack.session.get(stack.url + "/metrics") as resp:
        text = await resp.text()
    assert 'lakegate_runs_terminal_total{namespace="team-01",state="SUCCEEDED"}' in text
    done = await _lint(promtool, text)
    assert done.returncode == 0, done.stdout + done.stderr


def test_git_credential_refresh_failures_page_and_show_as_the_readme_says() -> None:
    """The README names the alert and the panel; both exist over the refresh metrics."""
    rules = {r["alert"]: r for r in _rules()}
    assert (
        "lakegate_git_credential_refresh_failures_total"
        in (rules["LakegateGitCredentialRefreshFailing"]["expr"])
    )
    assert "lakegate_git_credential_valid_until_seconds" in _names(_dashboard_exprs())
    readme = (DEPLOY.parent / "README.md").read_text("utf-8")
    assert "`LakegateGitCredentialRefreshFailing` fires on refresh failures" in readme
