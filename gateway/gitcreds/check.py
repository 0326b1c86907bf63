"""The Git credential step of a tenant check (``lakegate tenants check``): what lakegate
would do for the namespace's Azure DevOps runs, found without writing anything.

Off: nothing to check. Enabled: the identity must be an Entra service principal, Entra must
give it an Azure DevOps token (asked now, then dropped), and the Git Credentials API must let
it list its credentials; the answer says whether its ``azureDevOpsServices`` credential
exists yet (lakegate creates it at the first Azure DevOps run otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.databricks.git_credentials import AZURE_DEVOPS, GitCredentialsClient, same_provider
from gateway.errors import DatabricksError
from gateway.gitcreds.errors import GitCredentialError
from gateway.gitcreds.keeper import devops_token, entra_credential
from gateway.identity.resolver import ResolvedIdentity
from gateway.settings import TenantsSettings

STEP = "git-credentials"
Status = Literal["skipped", "ok", "failed"]


@dataclass(frozen=True, slots=True)
class StepResult:
    status: Status
    detail: str
    name: str = STEP
    # Whether a failure may heal by itself (an outage), for a check's exit code.
    transient: bool = False


async def git_credential_step(
    namespace: str,
    tenants: TenantsSettings,
    identity: ResolvedIdentity,
    client: GitCredentialsClient,
    *,
    wall: Callable[[], float] = time.time,
) -> StepResult:
    """The namespace's Git credential step (see the module docstring); never raises for
    what it checks, and writes nothing."""
    if tenants.git_credentials(namespace) != "entra":
        return StepResult("skipped", "git_credentials: off; lakegate touches no Git credential")
    try:
        credential = entra_credential(namespace, identity)
        token = await devops_token(namespace, credential)
        listed = await client.list(identity.workspace, identity.credential)
    except GitCredentialError as exc:
        return StepResult("failed", exc.message, transient=exc.transient)
    except DatabricksError as exc:
        return StepResult(
            "failed",
            f"namespace '{namespace}': the Git Credentials API refused to list the principal's "
            f"credentials: {exc.message}",
            transient=exc.transient,
        )
    minutes = round((token.seconds_left(wall()) or 0.0) / 60)
    found = [c for c in listed if same_provider(c.git_provider, AZURE_DEVOPS)]
    held = (
        f"its {AZURE_DEVOPS} credential {found[0].credential_id} gets a new token before each "
        "Azure DevOps run"
        if found
        else f"it has no {AZURE_DEVOPS} credential yet: lakegate creates it at the first "
        "Azure DevOps run"
    )
    return StepResult(
        "ok", f"Entra gives the principal Azure DevOps tokens ({minutes} min); {held}"
    )
