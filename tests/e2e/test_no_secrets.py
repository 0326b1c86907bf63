"""No credential reaches a log line or an HTTP answer, whatever the stack goes through.

The real stack runs with logging set up the way ``lakegate serve`` sets it up (structlog,
JSON; here at debug level) into a buffer, while PAT and OAuth namespaces submit, read, list
and cancel runs, Databricks refuses tokens (a 403 storm on runs/get, a revoked OAuth token),
the token endpoint fails, a spec is refused and an unconfigured namespace is turned away. Then
every log line, everything else written to stdout and stderr, and every answer the caller saw
(status line, headers and body) is searched for the stack's PATs and client secrets (whole or
in pieces, plain or inside a Basic header), for any JWT and for any bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import OAuthM2MIdentity, PatIdentity, Settings
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack, StackFactory, stack_configs
from tests.support.logging_config import configured_logs

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED", "INTERNAL_ERROR", "REJECTED"}
# Three base64url segments, the first a JSON header: the emulator's ES256 access tokens.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# A bearer credential; the redacted form ("Bearer [redacted]") does not match.
BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
# Any 12 characters of a secret count as a leak: a prefix "to help debugging" is one too.
PIECE = 12
PAT_NS, OAUTH_NS, PAT_NS_2, OAUTH_NS_2 = "team-00", "team-01", "team-02", "team-03"


def secrets_of(settings: Settings) -> dict[str, str]:
    """Every credential the gateway holds, by a name for the report, and its Basic forms."""
    found: dict[str, str] = {}
    for namespace, policy in settings.tenants.namespaces.items():
        identity = policy.identity
        if isinstance(identity, PatIdentity) and identity.token is not None:
            found[f"{namespace} PAT"] = identity.token.get_secret_value()
        elif isinstance(identity, OAuthM2MIdentity) and identity.client_secret is not None:
            secret = identity.client_secret.get_secret_value()
            basic = base64.b64encode(f"{identity.client_id}:{secret}".encode()).decode()
            found[f"{namespace} client secret"] = secret
            found[f"{namespace} Basic credentials"] = basic
    assert found, "the stack config holds no secret: the scan would prove nothing"
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Every credential-shaped thing in ``text``, with some context around it."""

    def around(start: int, end: int) -> str:
        return text[max(0, start - 80) : end + 80]

    found = []
    for name, secret in secrets.items():
        for i in range(len(secret) - PIECE + 1):
            at = text.find(secret[i : i + PIECE])
            if at >= 0:
                found.append(f"{name}: {around(at, at + PIECE)!r}")
                break
    found += [f"JWT: {around(*m.span())!r}" for m in JWT.finditer(text)]
    found += [f"bearer token: {around(*m.span())!r}" for m in BEARER.finditer(text)]
    return found


@pytest.fixture
def production_logs() -> Iterator[io.StringIO]:
    """structlog and stdlib logging configured as ``lakegate serve`` does, into a buffer."""
    with configured_logs("json", level="debug") as stream:
        yield stream


class Caller:
    """A scheduler calling the gateway; it keeps every answer it saw, headers and all."""

    def __init__(self, stack: GatewayStack) -> None:
        self.stack = stack
        self.seen: list[str] = []

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        async with self.stack.session.request(
            method, self.stack.url + path, json=body, headers=headers
        ) as resp:
            text = await resp.text()
            head = "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
            self.seen.append(f"HTTP {resp.status} {resp.reason}\n{head}\n{text}")
            return resp.status, json.loads(text) if text else None

    async def submit(self, namespace: str, run_spec: dict[str, Any]) -> tuple[str, int]:
        status, run = await self.call(
            "POST", f"/v1/namespaces/{namespace}/runs", {"spec": run_spec}
        )
        assert status in (201, 202), run
        return namespace, run["id"]

    async def rejected(self, namespace: str, run_spec: dict[str, Any]) -> tuple[str, int]:
        """Submit a run Databricks refuses: a 422 carrying the stored run's id."""
        status, problem = await self.call(
            "POST", f"/v1/namespaces/{namespace}/runs", {"spec": run_spec}
        )
        assert status == 422, problem
        return namespace, problem["run_id"]

    async def wait(self, runs: list[tuple[str, int]], within: float) -> dict[int, dict[str, Any]]:
        """Read every run until each has ended; the final runs, by id."""
        final: dict[int, dict[str, Any]] = {}
        async with asyncio.timeout(within):
            while len(final) < len(runs):
                for namespace, run_id in runs:
                    if run_id not in final:
                        _, run = await self.call("GET", f"/v1/namespaces/{namespace}/runs/{run_id}")
                        if run["state"] in TERMINAL:
                            final[run_id] = run
                await asyncio.sleep(0.2)
        return final

    async def emulator(self, path: str, body: dict[str, Any]) -> None:
        # The emulator's own admin API: not the gateway's answers, so not recorded.
        url = self.stack.emulator.url + path
        async with self.stack.session.post(url, json=body) as resp:
            assert resp.status == 200, await resp.text()


async def exercise(caller: Caller) -> list[tuple[str, int]]:
    """Everything that handles a credential: submissions, reads, refusals and refreshes."""
    runs = [await caller.submit(ns, spec(f"ok-{ns}")) for ns in (PAT_NS, OAUTH_NS)]
    for namespace, run_id in runs:
        await caller.call("GET", f"/v1/namespaces/{namespace}/runs/{run_id}")
        _, page = await caller.call("GET", f"/v1/namespaces/{namespace}/runs?limit=1")
        await caller.call("GET", f"/v1/namespaces/{namespace}/runs?state=RUNNING,PENDING")
        if page["next_cursor"]:
            await caller.call(
                "GET", f"/v1/namespaces/{namespace}/runs?cursor={page['next_cursor']}"
            )
    for namespace in (PAT_NS_2, OAUTH_NS_2):
        long = await caller.submit(namespace, spec(f"long-{namespace}", seconds=60))
        status, _ = await caller.call("POST", f"/v1/namespaces/{namespace}/runs/{long[1]}/cancel")
        assert status == 202
        runs.append(long)
    for namespace in (PAT_NS, OAUTH_NS):
        bad = spec("bad")
        bad["tasks"][0]["spark_python_task"] = {"python_file": "x.py"}  # two task types
        runs.append(await caller.rejected(namespace, bad))
    status, _ = await caller.call("POST", "/v1/namespaces/nobody/runs", {"spec": spec("x")})
    assert status == 403
    # A caller that sends a Databricks token of its own: the gateway must not log or echo it.
    pat = secrets_of(caller.stack.settings)[f"{PAT_NS} PAT"]
    await caller.call(
        "GET", f"/v1/namespaces/{PAT_NS}/runs", headers={"Authorization": f"Bearer {pat}"}
    )

    # A 403 storm on runs/get while runs are followed: the poller drops and refetches tokens.
    fault = {"path": "/api/*/jobs/runs/get", "action": "status", "status": 403, "count": 3}
    await caller.emulator("/emulator/faults", fault)
    runs += [await caller.submit(ns, spec(f"storm-{ns}")) for ns in (PAT_NS, OAUTH_NS)]
    # A revoked OAuth token: the next call is refused, and the credential fetches another.
    await caller.emulator(
        "/emulator/identity/revoke", {"principal": caller.stack.principal(OAUTH_NS)}
    )
    runs.append(await caller.submit(OAUTH_NS, spec("after-revoke")))
    # The token endpoint failing, transiently and for good, when a new token is needed.
    for status in (503, 401):
        token_fault = {"path": "/oidc/v1/token", "action": "status", "status": status, "count": 1}
        await caller.emulator("/emulator/faults", token_fault)
    await caller.emulator(
        "/emulator/identity/revoke", {"principal": caller.stack.principal(OAUTH_NS_2)}
    )
    # invalid_client is the namespace's credential refused for good: 422, the run REJECTED.
    runs.append(await caller.rejected(OAUTH_NS_2, spec("token-endpoint-down")))
    return runs


async def test_no_secret_in_logs_or_answers_through_refusals_and_refreshes(
    production_logs: io.StringIO,
    gateway_stack_factory: StackFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PATs, client secrets, JWTs and bearer tokens appear in no log line and no answer."""
    stack = await gateway_stack_factory(namespaces=4)
    caller = Caller(stack)
    runs = await exercise(caller)
    final = await caller.wait(runs, within=40)

    # The scenario did what it says: runs ended as expected and tokens were refused and reissued.
    states = sorted(run["state"] for run in final.values())
    # Two specs Databricks refuses, and one run whose token endpoint said invalid_client.
    assert states.count("REJECTED") == 3, states
    assert states.count("CANCELED") == 2, states
    assert states.count("SUCCEEDED") == len(runs) - 5, states
    emulator = stack.emulator.stats()
    assert emulator["faults"]["injected"] >= 5
    assert emulator["identity"]["tokens_issued"]["by_principal"][stack.principal(OAUTH_NS)] >= 2

    captured = capsys.readouterr()
    log_text = production_logs.getvalue()
    lines = [json.loads(line) for line in log_text.splitlines()]
    events = {line["event"] for line in lines}
    # Not vacuous: the logs carry the run's and the refusals' events, at debug level.
    wanted = {"http_request", "run_submitted", "databricks_call", "databricks_token_refused"}
    assert wanted <= events, sorted(events)
    assert len(caller.seen) > 20

    secrets = secrets_of(stack.settings)
    texts = {"logs": log_text, "stdout": captured.out, "stderr": captured.err}
    texts |= {f"answer {i}": answer for i, answer in enumerate(caller.seen)}
    found = {where: hits for where, text in texts.items() if (hits := leaks(text, secrets))}
    assert not found, json.dumps(found, indent=2)


def tenant_settings(tmp_path: Path) -> Settings:
    """The settings the stack fixture would build for a PAT and an OAuth namespace."""
    _, raw, _ = stack_configs(2, tmp_path=tmp_path)
    return Settings.model_validate(
        {**raw, "workspaces": {"emulated": {"host": "http://127.0.0.1:1"}}}
    )


def test_leak_scan_finds_each_credential_shape(tmp_path: Path) -> None:
    """The scan itself finds a secret's piece, a Basic header, a JWT and a bearer token."""
    secrets = secrets_of(tenant_settings(tmp_path))
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcC10ZWFtLTAxIn0.c2lnbmF0dXJl"
    for text in [
        f"token prefix {secrets['team-00 PAT'][:12]}",
        f"secret={secrets['team-01 client secret']}",
        f"Authorization: Basic {secrets['team-01 Basic credentials']}",
        f"got {jwt}",
        "Authorization: Bearer opaque-token-value",
    ]:
        assert leaks(text, secrets), text
    assert not leaks("Authorization: Bearer [redacted]; run 42 SUCCEEDED", secrets)


def test_settings_print_no_secret(tmp_path: Path) -> None:
    """Settings holding PATs and client secrets print, dump and serialise them masked."""
    settings = tenant_settings(tmp_path)
    secrets = secrets_of(settings)
    for text in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
    ):
        assert not leaks(text, secrets)
