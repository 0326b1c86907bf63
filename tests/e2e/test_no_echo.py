"""No secret leaves in an echo (issue 9): a token endpoint and a Jobs API that quote the
namespace's own client secret and PAT in their error bodies. The secrets are opaque (no shape
a pattern knows), so only redaction by value can catch them; they must appear in no answer,
no log line and no column of the ledger."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import sqlite3
import uuid

import pytest

from gateway.cli.errors import ApiError
from tests.e2e.specs import spec
from tests.e2e.test_no_secrets import production_logs
from tests.fixtures.identity_stack import IdentityStackFactory

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
