"""No secret leaves in an echo (issue 9): a token endpoint and a Jobs API that quote the
namespace's own client secret and PAT in their error bodies. The secrets are opaque (no shape
a pattern knows), so only redaction by value can catch them; they must appear in no answer,
no log line and no column of the ledger.

The widened scan (``test_canaries_from_every_source_leave_no_trace``) plants a canary through
every source of secrets lakegate has and has every upstream echo them all; its stack and
scenario are in ``tests.e2e.canary_stack``."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import sqlite3
import uuid
from pathlib import Path

import pytest

from gateway.cli.errors import ApiError
from tests.e2e.canaries import ledger_rows, malformed_heads, raw_exchange
from tests.e2e.canary_stack import (
    DISCOVERED,
    NAMESPACES,
    OAUTH_KINDS,
    PAT_KINDS,
    CanaryStack,
    Cleanups,
    start_canary_stack,
)
from tests.e2e.specs import spec
from tests.e2e.test_no_secrets import production_logs
from tests.fixtures.identity_stack import IdentityStackFactory
from tests.fixtures.kube_api import KubeApiFactory

__all__ = ["production_logs"]

OAUTH_NS, PAT_NS = "tenant-oauth", "tenant-pat"


def opaque(prefix: str) -> str:
    """A credential no pattern recognises: letters and digits with no known prefix."""
    return prefix + secrets.token_hex(16)


def ledger_text(path: str) -> str:
    """Every row of every table of the SQLite ledger, as one text."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return "\n".join(db.iterdump())


@pytest.mark.e2e
async def test_upstream_echoes_of_held_secrets_are_redacted_everywhere(
    production_logs: io.StringIO, identity_stack_factory: IdentityStackFactory
) -> None:
    """A token endpoint echoing the client secret (plain and Basic) and a Jobs API echoing
    the PAT are refused with 422 naming the cause, and neither value reaches an answer, a log
    line or the ledger."""
    stack = await identity_stack_factory()
    client_id, client_secret = str(uuid.uuid4()), opaque("cs")
    user, pat = f"{opaque('user')}@example.com", opaque("pat")
    stack._add(
        {
            "service_principals": [
                {"name": "sp-echo", "application_id": client_id, "secrets": [client_secret]}
            ],
            "users": [{"name": user, "pats": [pat]}],
        }
    )
    stack.kube.put_secret(
        OAUTH_NS, "databricks-oauth", {"client_id": client_id, "client_secret": client_secret}
    )
    stack.kube.put_secret(PAT_NS, "databricks-token", {"token": pat})
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    stack.emulator.fault(
        path="/oidc/v1/token",
        status=401,
        message=f"client {client_id} presented {client_secret} (Basic {basic}), refused",
    )
    stack.emulator.fault(
        path="/api/*/jobs/runs/submit", status=400, message=f"token {pat} may not submit"
    )

    answers: list[str] = []
    for namespace in (OAUTH_NS, PAT_NS):
        with pytest.raises(ApiError) as info:
            await stack.client().submit_body(namespace, {"spec": spec("echo")})
        assert 400 <= info.value.status < 500, info.value.problem
        answers.append(json.dumps(info.value.problem))
    # Not vacuous: the refusals quote the upstream's words, minus the secrets.
    assert "refused" in answers[0], answers
    assert "may not submit" in answers[1], answers
    assert stack.settings is not None
    ledger = ledger_text(stack.settings.store.sqlite_path)
    assert "may not submit" in ledger
    # The emulator's own record of the faults quotes them; it is the test's, not lakegate's.
    logged = "\n".join(
        line
        for line in production_logs.getvalue().splitlines()
        if not json.loads(line)["event"].startswith("emulator_")
    )
    assert "databricks_call" in logged

    for where, text in {"answers": "\n".join(answers), "logs": logged, "ledger": ledger}.items():
        for name, value in {"client secret": client_secret, "Basic": basic, "PAT": pat}.items():
            assert value not in text, f"the {name} is in the {where}"
            # A Secret's data as the API server sends it (a debug log of a client library).
            encoded = base64.b64encode(value.encode()).decode()
            assert encoded not in text, f"the {name}, base64, is in the {where}"


# --- canaries from every source -------------------------------------------------------------


async def _runs_succeed(stack: CanaryStack) -> None:
    """One run per namespace, to its end: lakegate then holds every source's value."""
    runs: dict[int, str] = {}
    for namespace in NAMESPACES:
        status, run = await stack.submit(namespace, f"warm-{namespace}")
        assert status == 201, run
        runs[run["id"]] = namespace
    final = await stack.wait(runs)
    assert {run["state"] for run in final.values()} == {"SUCCEEDED"}, final
    status, listed = await stack.call(
        "GET", "/api/2.1/jobs/runs/list", headers={"X-Lakegate-Namespace": "inline-pat"}
    )
    assert status == 200, listed


async def _token_endpoint_echoes(stack: CanaryStack) -> None:
    """OAuth tokens revoked; the token endpoint refuses the clients quoting every canary."""
    stack.emulator.fault(
        path="/oidc/v1/token", status=401, message=stack.canaries.echo(), count=100
    )
    for namespace in OAUTH_KINDS:
        await stack.emulator_admin("/emulator/identity/revoke", {"principal": f"sp-{namespace}"})
        status, problem = await stack.submit(namespace, f"token-echo-{namespace}")
        assert status == 422, problem
    stack.emulator.clear_faults()


async def _jobs_api_echoes(stack: CanaryStack) -> None:
    """runs/submit refused (400) and runs/get failing (500), both quoting every canary."""
    echo = stack.canaries.echo()
    stack.emulator.fault(path="/api/*/jobs/runs/submit", status=400, message=echo, count=100)
    for namespace in PAT_KINDS:
        status, problem = await stack.submit(namespace, f"jobs-echo-{namespace}")
        assert status == 422, problem
    body = {**spec("compat-echo"), "idempotency_token": "canary-1"}
    headers = {"X-Lakegate-Namespace": "inline-pat"}
    status, error = await stack.call("POST", "/api/2.1/jobs/runs/submit", body, headers)
    assert status == 400, error
    stack.emulator.clear_faults()
    runs: dict[int, str] = {}
    for namespace in NAMESPACES:
        if namespace in OAUTH_KINDS:
            continue
        status, run = await stack.submit(namespace, f"get-echo-{namespace}", seconds=1.5)
        assert status == 201, run
        runs[run["id"]] = namespace
    stack.emulator.fault(
        path="/api/*/jobs/runs/get", status=500, message=stack.canaries.echo(), count=12
    )
    for run_id, namespace in runs.items():
        headers = {"X-Lakegate-Namespace": namespace}
        status, _ = await stack.call(
            "GET", f"/api/2.1/jobs/runs/get?run_id={run_id}", None, headers
        )
        assert status in (200, 503), status
    await stack.wait(runs)
    stack.emulator.clear_faults()


async def _kubernetes_echoes(stack: CanaryStack) -> None:
    """RBAC forbids reading Secrets; the Status names the caller, made of every canary.

    Through the policy's Secret the run is refused (422, naming the Secret); in a namespace
    whose identity is discovered, the refusal (403) quotes the API server's Status."""
    rules = [stack.kube.deny("get", "secrets", namespace=ns) for ns in ("secret-pat", DISCOVERED)]
    status, problem = await stack.submit("secret-pat", "kube-echo")
    assert status == 422, problem
    status, problem = await stack.submit(DISCOVERED, "kube-echo-discovered")
    assert status == 403, problem
    assert stack.canaries.label("Secret PAT") + "=[redacted]" in problem["detail"], problem
    for rule in rules:
        stack.kube.allow(rule)


async def _malformed_heads(stack: CanaryStack) -> None:
    """Heads aiohttp cannot parse, carrying the API key and a held PAT: a 400 each."""
    pat = stack.canaries.by_source["inline PAT"]
    for kind, head in malformed_heads("127.0.0.1", pat, stack.api_key):
        answer = await raw_exchange("127.0.0.1", stack.port, head)
        assert answer.split(" ", 2)[1] == "400", (kind, answer[:300])
        stack.seen.append(answer)


def _lakegate_lines(text: str) -> list[str]:
    """The log lines lakegate wrote: the emulators' own (test equipment) left out."""
    kept = []
    for line in text.splitlines():
        event = json.loads(line).get("event", "") if line.startswith("{") else ""
        if not event.startswith(("emulator_", "kube_emulator_")):
            kept.append(line)
    return kept


@pytest.mark.e2e
@pytest.mark.timeout(120)
async def test_canaries_from_every_source_leave_no_trace(
    production_logs: io.StringIO,
    kube_api_factory: KubeApiFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Canaries planted inline, in the environment, in Secrets, in the Kubernetes token file
    and as the caller's API key, echoed by the token endpoint, the Jobs API and Kubernetes
    and sent in unparsable request heads, appear in no answer (body or header), no column of
    any ledger table and no log line, plain, base64 or url-encoded, whole or in part."""
    cleanups: Cleanups = []
    try:
        stack = await start_canary_stack(kube_api_factory, tmp_path, cleanups)
        await _runs_succeed(stack)
        await _token_endpoint_echoes(stack)
        await _jobs_api_echoes(stack)
        await _kubernetes_echoes(stack)
        await _malformed_heads(stack)
        ledger = ledger_rows(stack.settings.store.sqlite_path)
    finally:
        for cleanup in reversed(cleanups):
            await cleanup()

    captured = capsys.readouterr()
    logged = _lakegate_lines(production_logs.getvalue())
    events = {json.loads(line)["event"] for line in logged if line.startswith("{")}
    texts = {f"answer {i}": answer for i, answer in enumerate(stack.seen)}
    texts |= {f"ledger row {i}": row for i, row in enumerate(ledger)}
    texts |= {f"log line {i}": line for i, line in enumerate(logged)}
    texts |= {"stdout": captured.out, "stderr": "\n".join(_lakegate_lines(captured.err))}
    found = {where: hits for where, text in texts.items() if (hits := stack.canaries.hits(text))}
    assert not found, json.dumps(found, indent=2)[:6000]
    # Not vacuous: the echoes arrived, their secrets masked, in answers, ledger and logs.
    answers = "\n".join(stack.seen)
    masked = {s: stack.canaries.label(s) + "=[redacted]" for s in stack.canaries.by_source}
    assert masked["inline PAT"] in answers
    assert masked["Kubernetes token file"] in answers
    assert any(masked["env client secret"] in row for row in ledger)
    wanted = {"http_request", "databricks_call", "http_request_unparsable", "run_submitted"}
    assert wanted <= events, sorted(events)
