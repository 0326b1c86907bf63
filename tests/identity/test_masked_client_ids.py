"""No log line of lakegate's carries a full client id, a token, a secret or a JWT: each identity
kind is driven end to end (REST API -> resolver -> Kubernetes / token endpoints -> Jobs API)
with logging set up as ``lakegate serve`` sets it up, at debug level, into a buffer, through
its good path and the refusals that quote upstream text (a client id the token endpoint does
not know, a token refused by the workspace). Client ids may appear masked (first 4 ... last 4).

The emulators' own lines (``emulator_*``, ``kube_emulator_*``) are Databricks' and the
cluster's, not lakegate's, and are left out of the scan.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from gateway.identity.principal import mask_client_id
from tests.e2e.test_no_secrets import BEARER, JWT, production_logs
from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_SECRET_CLIENT_ID,
    AZURE_TENANT_ID,
    AZURE_WI_APP,
    AZURE_WI_CLIENT_ID,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SP,
    POD_CLIENT_ID,
    POD_SP,
    IdentityStack,
    IdentityStackFactory,
    default_environ,
)

__all__ = ["production_logs"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

UNKNOWN_CLIENT_ID = "5e1f0c2a-0000-4000-8000-00000000beef"
# No service principal of the workspace has it: the token endpoint says so, naming it.
STRANGER_CLIENT_ID = "5e1f0c2a-0000-4000-8000-00000000dead"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/"
    "providers/Microsoft.Databricks/workspaces/ws"
)


def lakegate_lines(stream: io.StringIO) -> list[str]:
    """Every line lakegate logged (the emulators' own events left out)."""
    kept = []
    for line in stream.getvalue().splitlines():
        try:
            event = str(json.loads(line).get("event", ""))
        except ValueError:
            kept.append(line)  # stdlib or raw output: scanned too
            continue
        if not event.startswith(("emulator_", "kube_emulator_")):
            kept.append(line)
    return kept


def leaks(lines: list[str], client_ids: list[str], secrets: list[str]) -> list[str]:
    found = []
    for line in lines:
        found += [f"client id {c}: {line}" for c in client_ids if c in line]
        found += [f"secret: {line}" for s in secrets if s and s in line]
        found += [f"JWT: {line}" for _ in JWT.finditer(line)]
        found += [f"bearer: {line}" for _ in BEARER.finditer(line)]
    return found


async def drive_every_kind(stack: IdentityStack) -> tuple[list[str], list[str]]:
    """Each kind's good path and its upstream refusals; (client ids used, secrets used)."""
    client_ids = [POD_CLIENT_ID, AZURE_SECRET_CLIENT_ID, AZURE_WI_CLIENT_ID, DEFAULT_CLIENT_ID]
    secrets = [AZURE_SECRET, DEFAULT_CLIENT_SECRET]
    pat_user = stack.pat_secret("team-pat")
    assert await stack.run_to_end("team-pat", "pat") == pat_user.name
    secrets.append(pat_user.secret or "")
    oauth = stack.oauth_secret("team-oauth")
    assert await stack.run_to_end("team-oauth", "oauth") == oauth.name
    for flavour in ("lakegate", "flyte"):
        sa = stack.labelled_service_account(f"team-{flavour}", "runner", flavour=flavour)
        await stack.synced()
        assert await stack.run_to_end(f"team-{flavour}", f"sa-{flavour}") == sa.name
        client_ids.append(str(sa.application_id))
    client_ids.append(str(oauth.application_id))
    secrets.append(oauth.secret or "")
    assert await stack.run_to_end("team-pod", "pod") == POD_SP
    assert await stack.run_to_end("team-az", "azure-secret") == AZURE_SECRET_APP
    assert await stack.run_to_end("team-wi", "azure-wi") == AZURE_WI_APP
    assert await stack.run_to_end("team-default", "default") == DEFAULT_SP
    # Refusals that quote the token endpoint: a client id it does not know.
    stack.kube.put_secret(
        "team-unknown",
        "databricks-oauth",
        {"client_id": UNKNOWN_CLIENT_ID, "client_secret": "dose" + "0" * 32},
    )
    client_ids.append(UNKNOWN_CLIENT_ID)
    await stack.refused("team-unknown")
    # A labelled ServiceAccount naming a principal with no federation policy for it.
    stranger = STRANGER_CLIENT_ID
    stack.kube.create_service_account(
        "team-stranger",
        "runner",
        labels={"lakegate.io/databricks-enabled": "true"},
        annotations={"lakegate.io/databricks-client-id": stranger},
    )
    client_ids.append(stranger)
    await stack.synced()
    # The token endpoint answers "unknown client_id <id>": the refusal (and the run's state
    # message) says whom it is about, masked.
    problem = await stack.refused("team-stranger")
    assert stranger not in str(problem.problem)
    assert "unknown client_id 5e1f...dead" in (problem.detail or ""), problem.detail
    # The workspace revokes the OAuth principal's token: refused, refreshed, retried.
    stack.emulator.identity.revoke_principal(oauth.name)
    assert await stack.run_to_end("team-oauth", "oauth-after-revoke") == oauth.name
    return client_ids, secrets


async def test_no_full_client_id_token_or_secret_reaches_a_log_line(
    identity_stack_factory: IdentityStackFactory, production_logs: io.StringIO
) -> None:
    tenants: dict[str, Any] = {
        "team-pod": {"identity": {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}},
        "team-az": {
            "identity": {
                "type": "azure-client-secret",
                "tenant_id": AZURE_TENANT_ID,
                "client_id": AZURE_SECRET_CLIENT_ID,
                "client_secret": AZURE_SECRET,
            }
        },
        "team-wi": {
            "identity": {
                "type": "azure-workload-identity",
                "tenant_id": AZURE_TENANT_ID,
                "client_id": AZURE_WI_CLIENT_ID,
            }
        },
        "team-default": {"identity": {"type": "default"}},
    }
    stack = await identity_stack_factory(
        tenants=tenants,
        environ_of=default_environ,
        workspace=lambda url: {"azure_resource_id": RESOURCE_ID},
    )
    client_ids, secrets = await drive_every_kind(stack)
    lines = lakegate_lines(production_logs)
    assert len(lines) > 20, "the capture holds too little to prove anything"
    assert leaks(lines, client_ids, secrets) == []
    # The client ids are there, masked: the events still say whom they are about.
    text = "\n".join(lines)
    assert mask_client_id(POD_CLIENT_ID) in text
