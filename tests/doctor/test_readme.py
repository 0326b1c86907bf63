"""The README's "Onboarding a namespace: the tenant doctor" section, sentence by sentence,
where tests/doctor/test_cases.py (each kind, healthy and broken; snapshots), test_routes.py
(authorization, no secret, the list) and test_cli.py (exit codes, --json) do not already."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp

from gateway.doctor import Doctor
from gateway.identity.explain import Explanation, Rule
from gateway.settings import Settings
from tests.doctor.cases import AZURE_SECRET_POLICY, AZURE_WI_POLICY, CASES
from tests.doctor.snapshots import DIRECTORY
from tests.fixtures.identity_stack import AZURE_SECRET, IdentityStackFactory

README = Path(__file__).parents[2] / "README.md"


def _section() -> str:
    text = README.read_text("utf-8")
    start = text.index("### Onboarding a namespace: the tenant doctor")
    return text[start : text.index("## Who may call", start)]


def test_the_example_is_a_snapshot() -> None:
    """The example output in the README is the snapshot of its case, byte for byte."""
    example = re.search(r"\$ lakegate tenants check team-a\n(.*?)```", _section(), re.S)
    assert example is not None
    snapshot = (DIRECTORY / "service-account-federation-refused.txt").read_text("utf-8")
    assert example.group(1) == snapshot


def test_every_case_has_a_snapshot() -> None:
    """The snapshots directory holds the output of each case, and nothing else."""
    assert {p.stem for p in DIRECTORY.glob("*.txt")} == {case.name for case in CASES}


def _steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in report["steps"]}


async def test_the_decision_is_made_afresh(identity_stack_factory: IdentityStackFactory) -> None:
    """A Secret added after a run was resolved is what the doctor reports, not the cached
    resolution: the doctor asks the resolver's own rules again."""
    stack = await identity_stack_factory()
    stack.pat_secret("team-a")
    await stack.run_to_end("team-a", "first")
    stack.oauth_secret("team-a")  # databricks-oauth comes before databricks-token
    report = await stack.client().identity_report("team-a")
    assert _steps(report)["identity"]["facts"]["kind"] == "oauth-m2m"


async def test_own_cache_and_runs_list_of_one(identity_stack_factory: IdentityStackFactory) -> None:
    """The check fetches a token of its own (one more grant), lists one run as the principal,
    and leaves the gateway's cached token in place (the next run asks for none)."""
    stack = await identity_stack_factory()
    stack.oauth_secret("team-a")
    await stack.run_to_end("team-a", "one")
    await stack.run_to_end("team-a", "two")
    grants = stack.identity_stats()["token_requests"]["total"]
    report = await stack.client().identity_report("team-a")
    steps = _steps(report)
    assert steps["jobs-api"]["outcome"] == "ok"
    assert "(1 run(s) shown)" in steps["jobs-api"]["detail"]
    assert stack.identity_stats()["token_requests"]["total"] == grants + 1
    await stack.run_to_end("team-a", "three")
    assert stack.identity_stats()["token_requests"]["total"] == grants + 1


async def test_steps_after_a_failed_identity_step_are_skipped(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """After the failed identity rule every identity step is skipped; quotas are shown."""
    stack = await identity_stack_factory()
    report = await stack.client().identity_report("team-none")
    outcomes = [(s["name"], s["outcome"]) for s in report["steps"]]
    assert outcomes == [
        ("policy", "skipped"), ("identity", "failed"), ("source", "skipped"),
        ("token-request", "skipped"), ("token", "skipped"), ("jobs-api", "skipped"),
        ("git-credentials", "skipped"), ("quotas", "ok"), ("webhook", "skipped"),
    ]  # fmt: skip


async def test_sources_show_what_was_read(identity_stack_factory: IdentityStackFactory) -> None:
    """A ServiceAccount shows its labels, masked client id and audience; a token file the
    issuer and subject of its JWT."""
    stack = await identity_stack_factory(
        tenants={"team-pod": {"identity": {"type": "pod-token-federation", "client_id": "c" * 36}}}
    )
    stack.labelled_service_account("team-a", "runner")
    await stack.synced()
    account = _steps(await stack.client().identity_report("team-a"))["source"]["facts"]
    assert account["labels"] == ["lakegate.io/databricks-enabled=true"]
    assert re.fullmatch(r"[0-9a-f]{4}\.\.\.[0-9a-f]{4}", account["client_id"])
    assert account["audience"] == "databricks"
    token_file = _steps(await stack.client().identity_report("team-pod"))["source"]["facts"]
    assert token_file["issuer"] == stack.kube.issuer
    assert token_file["subject"] == "system:serviceaccount:lakegate-system:lakegate"


async def test_list_mints_nothing(identity_stack_factory: IdentityStackFactory) -> None:
    """The list names a labelled ServiceAccount's namespace without a TokenRequest."""
    stack = await identity_stack_factory(
        tenants={"team-cfg": {"identity": {"type": "pat", "token": "dapi" + "1" * 32}}}
    )
    stack.labelled_service_account("team-sa", "runner")
    await stack.synced()
    listed = {t["namespace"]: t for t in await stack.client().namespaces()}
    assert listed["team-cfg"]["known_as"] == ["tenants file"]
    assert listed["team-sa"]["known_as"] == ["labelled ServiceAccount"]
    assert listed["team-sa"]["kind"] == "service-account-federation"
    assert stack.kube.token_requests("team-sa", "runner") == 0


class _Explainer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def explain(self, namespace: str) -> Explanation:
        return Explanation(namespace, (Rule("default identity", "refused", "none"),), None, None)


async def test_list_includes_watched_namespaces() -> None:
    """A namespace of kubernetes.namespaces is listed as watched, configured or not."""
    settings = Settings.model_validate(
        {
            "workspaces": {"main": {"host": "https://adb-1.azuredatabricks.net"}},
            "callers": {"methods": ["none"]},
            "kubernetes": {"mode": "off", "namespaces": ["team-w"]},
        }
    )
    async with aiohttp.ClientSession() as session:
        doctor = Doctor(_Explainer(settings), session, kube=None)
        tenants = await doctor.tenants()
        await doctor.aclose()
    assert [(t.namespace, t.known_as, t.state) for t in tenants] == [
        ("team-w", ("watched",), "refused")
    ]


async def test_concurrent_checks_share_one_walk(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Ten checks of one namespace at once cost one token grant; the next check walks anew."""
    stack = await identity_stack_factory()
    stack.oauth_secret("team-a")
    client = stack.client()
    reports = await asyncio.gather(*(client.identity_report("team-a") for _ in range(10)))
    assert all(r["healthy"] for r in reports)
    assert stack.identity_stats()["token_requests"]["total"] == 1
    await client.identity_report("team-a")
    assert stack.identity_stats()["token_requests"]["total"] == 2


async def test_git_credential_step_asks_and_writes_nothing(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """With git_credentials: entra, each Entra kind gets the step: one Azure DevOps token asked
    (the Databricks token is step 5's, not fetched again), one list of the principal's
    credentials, no credential created or updated."""
    stack = await identity_stack_factory(
        tenants={
            "team-secret": {"identity": AZURE_SECRET_POLICY, "git_credentials": "entra"},
            "team-wi": {"identity": AZURE_WI_POLICY, "git_credentials": "entra"},
        }
    )
    stack.kube.put_secret("team-secret", "azure-sp", {"client_secret": AZURE_SECRET})
    for namespace in ("team-secret", "team-wi"):
        step = _steps(await stack.client().identity_report(namespace))["git-credentials"]
        assert step["outcome"] == "ok", step
        assert "no azureDevOpsServices credential yet" in step["detail"]
    issued = stack.emulator.entra.stats()["tokens_issued"]["by_resource"]
    assert issued == {"databricks": 2, "azure-devops": 2}
    ops = stack.emulator.workspace.git_credentials.ops
    assert (ops["list"], ops["create"], ops["update"]) == (2, 0, 0)
    assert stack.emulator.git_credentials() == []
