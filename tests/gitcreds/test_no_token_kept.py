"""The Azure DevOps token is sent to Databricks and nowhere else: no log line and no byte of
the ledger holds it, nor any other JWT (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from tests.e2e.test_no_secrets import JWT
from tests.gitcreds.stack import AzureStackFactory, ado_spec, azure_identity

NS = "team-ado"


def ledger_bytes(directory: Path) -> bytes:
    """The SQLite ledger and its WAL, as written."""
    return b"".join(p.read_bytes() for p in directory.glob("ledger.db*"))


async def test_the_devops_token_is_neither_logged_nor_stored(
    azure_stack_factory: AzureStackFactory, tmp_path: Path
) -> None:
    """Across a create, an update after expiry and a refused write, logs and the ledger hold
    no JWT; the emulator's credential holds the Azure DevOps token lakegate wrote."""
    stack = await azure_stack_factory(
        tenants={NS: {"identity": azure_identity(), "git_credentials": "entra"}}
    )
    with capture_logs() as logs:
        await stack.finish(NS, await stack.submit(NS, ado_spec("one")))
        stack.emulator.advance(3600)
        await stack.finish(NS, await stack.submit(NS, ado_spec("two")))
        stack.emulator.advance(3600)
        stack.emulator.fault(
            path="/api/2.0/git-credentials*", status=400, message="bad token value"
        )
        await stack.refused(NS, ado_spec("three"))
    assert stack.devops_tokens() == 3
    assert any(e["event"] == "git_credential_refreshed" for e in logs)
    rendered = "\n".join(json.dumps(e, default=str) for e in logs)
    assert JWT.search(rendered) is None
    ledger = ledger_bytes(tmp_path)
    assert ledger, "the ledger was written"
    assert JWT.search(ledger.decode("latin-1")) is None
