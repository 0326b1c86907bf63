"""``lakegate tenants check`` for a namespace of each identity kind, healthy and broken in each
way the resolver refuses, against the fake Kubernetes API and the Databricks emulator (which
also plays Entra ID) on loopback. The CLI's text is compared with a snapshot file
(``tests/doctor/snapshots``; ``LAKEGATE_UPDATE_SNAPSHOTS=1`` rewrites them)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from gateway import secrets_registry
from gateway.cli.main import main
from tests.doctor import snapshots
from tests.doctor.cases import CASES, NS, Case
from tests.fixtures.identity_stack import IdentityStack, IdentityStackFactory

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


async def _started(factory: IdentityStackFactory, case: Case) -> tuple[IdentityStack, list[str]]:
    stack = await factory(
        tenants=case.tenants, identity=case.identity, default_identity=case.default_identity
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
