"""``lakegate tenants check`` for a namespace of each identity kind, healthy and broken in each
way the resolver refuses, against the fake Kubernetes API and the Databricks emulator (which
also plays Entra ID) on loopback. The CLI's text is compared with a snapshot file
(``tests/doctor/snapshots``; ``LAKEGATE_UPDATE_SNAPSHOTS=1`` rewrites them)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml

from gateway import secrets_registry
from gateway.cli.main import main
from tests.doctor import snapshots
from tests.doctor.cases import AZURE_SECRET_POLICY, CASES, NS, Case, policy_of
from tests.fixtures.identity_stack import AZURE_SECRET, IdentityStack, IdentityStackFactory

ROOT = Path(__file__).parents[2]
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


async def _started(factory: IdentityStackFactory, case: Case) -> tuple[IdentityStack, list[str]]:
    stack = await factory(
        tenants=case.tenants,
        identity=case.identity,
        default_identity=case.default_identity,
        entra_apps=case.entra_apps,
    )
    secrets = case.setup(stack)
    await stack.synced()
    return stack, secrets


def assert_no_secret(text: str, secrets: list[str]) -> None:
    """No value the case made, no value the gateway holds as a secret, no JWT."""
    for value in secrets:
        assert value not in text
    assert secrets_registry.scrub(text) == text
    assert JWT.search(text) is None
    assert "dapi" not in text


async def _cli(*argv: str) -> int:
    # The CLI runs its own event loop, as from a shell; the gateway answers on this one.
    return await asyncio.to_thread(main, list(argv))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_report_names_the_failing_step_and_its_fix(
    identity_stack_factory: IdentityStackFactory, case: Case
) -> None:
    """The report's first failed step is the case's, with its object, cause and fix; a
    healthy namespace fails no step; no token, secret or JWT is in the answer."""
    stack, secrets = await _started(identity_stack_factory, case)
    report = await stack.client().identity_report(NS)
    failed = [step for step in report["steps"] if step["outcome"] == "failed"]
    assert report["healthy"] is case.healthy
    if case.healthy:
        assert failed == []
    else:
        assert failed[0]["name"] == case.fails
        assert failed[0]["object"]
        assert failed[0]["cause"]
        assert failed[0]["fix"]
    assert_no_secret(json.dumps(report), secrets)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_cli_text_matches_its_snapshot(
    identity_stack_factory: IdentityStackFactory, case: Case, capfd: pytest.CaptureFixture[str]
) -> None:
    """`lakegate tenants check NS` prints each step and exits 0 healthy, 1 with a failed step."""
    stack, secrets = await _started(identity_stack_factory, case)
    capfd.readouterr()
    code = await _cli("tenants", "check", NS, "--url", stack.url)
    out = capfd.readouterr().out
    assert code == (0 if case.healthy else 1)
    assert_no_secret(out, secrets)
    snapshots.check(case.name, snapshots.normalise(out, stack.files))


async def test_shipped_tenant_without_its_variable_is_reported(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """deploy/base's example tenant, with no lakegate-tenant-credentials Secret loaded: the
    gateway serves, and the doctor's first failing step names the variable and the Secret."""
    shipped = yaml.safe_load((ROOT / "deploy/base/tenants.yaml").read_text("utf-8"))
    stack = await identity_stack_factory(tenants=shipped["namespaces"])
    report = await stack.client().identity_report("team-a")
    first = next(step for step in report["steps"] if step["outcome"] == "failed")
    assert first["name"] == "policy"
    assert first["object"] == "tenants.namespaces.team-a.identity.client_secret_env"
    assert "TEAM_A_DATABRICKS_CLIENT_SECRET" in first["cause"]
    assert "lakegate-tenant-credentials" in first["fix"]


async def test_entra_principal_lists_with_its_management_token(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """With the workspace's azure_resource_id, the doctor's runs/list carries the Entra
    principal's management token, as its runs' calls do."""
    resource = (
        "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg-data/"
        "providers/Microsoft.Databricks/workspaces/ws-data"
    )
    extra = {"azure_resource_id": resource}
    stack = await identity_stack_factory(
        tenants=policy_of(AZURE_SECRET_POLICY), workspace=lambda url: extra
    )
    stack.kube.put_secret(NS, "azure-sp", {"client_secret": AZURE_SECRET})
    report = await stack.client().identity_report(NS)
    assert report["healthy"] is True
    issued = stack.emulator.entra.stats()["tokens_issued"]["by_resource"]
    assert issued == {"databricks": 1, "management": 1}
