"""The doctor through refusals as through success, with logs set up as ``lakegate serve`` sets
them at debug level: no PAT, client secret, Basic credential, JWT or bearer token reaches a
log line, an answer, or the CLI's output (the scan of ``tests/e2e/test_no_secrets``)."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest

from gateway.cli.main import main
from tests.e2e.test_no_secrets import leaks, production_logs, secrets_of
from tests.fixtures.gateway import StackFactory
from tests.fixtures.identity_stack import POD_CLIENT_ID, IdentityStackFactory

__all__ = ["production_logs"]  # the fixture, used by name


async def _answers(url: str, paths: list[str]) -> dict[str, str]:
    """Each path's whole answer (status, headers, body), by path."""
    seen = {}
    async with aiohttp.ClientSession() as http:
        for path in paths:
            async with http.get(url + path) as response:
                seen[path] = f"{response.status} {dict(response.headers)}\n{await response.text()}"
    return seen


def _scan(texts: dict[str, str], secrets: dict[str, str]) -> None:
    found = {where: hits for where, text in texts.items() if (hits := leaks(text, secrets))}
    assert not found, json.dumps(found, indent=2)


async def test_no_secret_through_inline_credentials_and_a_revoked_one(
    production_logs: io.StringIO,
    gateway_stack_factory: StackFactory,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """PAT and OAuth namespaces checked healthy, then with their credentials revoked."""
    stack = await gateway_stack_factory(namespaces=4)
    paths = ["/v1/namespaces"] + [f"/v1/namespaces/team-0{i}/identity" for i in range(4)]
    before = await _answers(stack.url, paths)
    revoke_url = f"{stack.emulator.url}/emulator/identity/revoke"
    for namespace in ("team-00", "team-01"):
        revoke = {"principal": stack.principal(namespace), "include_pats": True}
        async with stack.session.post(revoke_url, json=revoke) as answer:
            assert answer.status == 200
    after = await _answers(stack.url, paths)
    # Not vacuous: healthy first, refused by the workspace after the revocation.
    assert '"healthy":true' in before[paths[1]].replace(" ", "")
    assert '"healthy":false' in after[paths[1]].replace(" ", "")
    code = await asyncio.to_thread(main, ["tenants", "check", "team-00", "--url", stack.url])
    assert code == 1
    captured = capfd.readouterr()
    texts = {"logs": production_logs.getvalue(), "out": captured.out, "err": captured.err}
    texts |= {f"before {p}": a for p, a in before.items()}
    texts |= {f"after {p}": a for p, a in after.items()}
    assert "databricks_call" in texts["logs"]
    _scan(texts, secrets_of(stack.settings))


async def test_no_jwt_through_federation(
    production_logs: io.StringIO,
    identity_stack_factory: IdentityStackFactory,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A minted ServiceAccount token and the pod's projected token, exchanged and refused:
    the JWTs appear nowhere."""
    pod = {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}
    refused = {**pod, "client_id": "x" * 36}
    stack = await identity_stack_factory(
        tenants={"team-pod": {"identity": pod}, "team-bad": {"identity": refused}}
    )
    stack.labelled_service_account("team-sa", "runner")
    await stack.synced()
    paths = [f"/v1/namespaces/{ns}/identity" for ns in ("team-pod", "team-bad", "team-sa")]
    seen = await _answers(stack.url, paths)
    code = await asyncio.to_thread(main, ["tenants", "check", "team-sa", "--url", stack.url])
    assert code == 0
    captured = capfd.readouterr()
    # Not vacuous: a token was minted, two were exchanged and one refused.
    assert '"healthy":true' in seen[paths[2]].replace(" ", "")
    assert '"healthy":false' in seen[paths[1]].replace(" ", "")
    assert stack.kube.token_requests("team-sa", "runner") >= 1
    texts = {"logs": production_logs.getvalue(), "out": captured.out, "err": captured.err}
    _scan(texts | seen, {})
