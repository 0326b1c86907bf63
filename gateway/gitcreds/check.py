"""The Git credential step of a tenant check (``lakegate tenants check``): what lakegate
would do for the namespace's Azure DevOps runs, found without writing anything.

Off: nothing to check. Enabled: the identity must be an Entra service principal, Entra must
give it an Azure DevOps token (asked now, then dropped), and the Git Credentials API must let
it list its credentials; the answer says whether its ``azureDevOpsServices`` credential
exists yet (lakegate creates it at the first Azure DevOps run otherwise). A failure names
the object, the cause and the fix, as every step of the tenant doctor does.

The step is given whom to check (``CheckedIdentity``) rather than resolving it: the tenant
doctor checks with the token and tools of its own walk, so a check neither reuses nor
disturbs the credentials runs are served with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.databricks.auth import AccessToken, TokenProvider
from gateway.databricks.git_credentials import (
    AZURE_DEVOPS,
    GitCredential,
    GitCredentialsClient,
    same_provider,
)
from gateway.databricks.jobs import Workspace
from gateway.errors import DatabricksError, IdentityError, LakegateError, TokenEndpointError
from gateway.gitcreds import policy
from gateway.identity.entra_resources import EntraResourceTokens
from gateway.identity.resolver import ResolvedIdentity
from gateway.secrets_registry import remember
from gateway.settings import TenantsSettings

STEP = "git-credentials"
Status = Literal["skipped", "ok", "failed"]
_AGAIN = "then run `lakegate tenants check` again"
_LATER = "(an outage, not the set-up): check again later"


@dataclass(frozen=True, slots=True)
class CheckedIdentity:
    """Whom the step checks: the identity's kind and origin, its workspace, and a credential
    that calls Databricks as the principal and, for an Entra principal, also asks Entra for
    other resources (``EntraResourceTokens``)."""

    kind: str | None
    origin: str | None
    workspace: Workspace
    credential: TokenProvider

    @classmethod
    def of(cls, identity: ResolvedIdentity) -> CheckedIdentity:
        return cls(identity.kind, identity.origin, identity.workspace, identity.credential)


@dataclass(frozen=True, slots=True)
class StepResult:
    status: Status
    # What was found; on failure, the cause.
    detail: str
    name: str = STEP
    # Whether a failure may heal by itself (an outage), for a check's exit code.
    transient: bool = False
    # On failure: what was looked at, and what to do about it.
    object: str | None = None
    fix: str | None = None
    credential_id: int | None = None


class _Failed(Exception):
    def __init__(self, result: StepResult) -> None:
        super().__init__(result.detail)
        self.result = result


async def git_credential_step(
    namespace: str,
    tenants: TenantsSettings,
    identity: CheckedIdentity,
    client: GitCredentialsClient,
    *,
    wall: Callable[[], float] = time.time,
) -> StepResult:
    """The namespace's Git credential step (see the module docstring); never raises for
    what it checks, and writes nothing."""
    if tenants.git_credentials(namespace) != "entra":
        return StepResult("skipped", "git_credentials: off; lakegate touches no Git credential")
    try:
        token = await _devops_token(namespace, identity)
        listed = await _listed(identity, client)
    except _Failed as failure:
        return failure.result
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
        "ok",
        f"Entra gives the principal Azure DevOps tokens ({minutes} min); {held}",
        credential_id=found[0].credential_id if found else None,
    )


def _entra(namespace: str, identity: CheckedIdentity) -> EntraResourceTokens:
    credential = identity.credential
    if policy.can_keep(identity.kind) and isinstance(credential, EntraResourceTokens):
        return credential
    what = f"a {identity.kind} identity" if identity.kind else "no identity of its own"
    raise _Failed(
        StepResult(
            "failed",
            "git_credentials: entra needs an Azure service principal (azure-client-secret or "
            f"azure-workload-identity), but the namespace has {what}: an Entra ID token for "
            "Azure DevOps can only be asked with an Entra identity",
            object=f"the identity of '{namespace}' ({identity.origin or 'none'})",
            fix="give the namespace an Azure identity in its tenant policy, or set "
            "git_credentials: off and keep a Git credential in Databricks yourself",
        )
    )


async def _devops_token(namespace: str, identity: CheckedIdentity) -> AccessToken:
    """A new Entra token for Azure DevOps, asked with the identity's own Entra credential;
    only its lifetime is shown."""
    credential = _entra(namespace, identity)
    where = (
        f"Entra ID token for Azure DevOps ({policy.AZURE_DEVOPS_RESOURCE}) for "
        f"{identity.kind} ({identity.origin})"
    )
    try:
        token = await credential.entra_resource_token(policy.AZURE_DEVOPS_SCOPE)
    except (TokenEndpointError, IdentityError) as exc:
        transient = exc.transient
        if transient:
            fix = f"Entra is failing for now {_LATER}"
        elif isinstance(exc, TokenEndpointError):
            fix = (
                "give the service principal access to Azure DevOps (add it to the "
                f"organization, with access to the repositories its runs clone), {_AGAIN}"
            )
        else:
            fix = f"correct what the cause names, {_AGAIN}"
        raise _Failed(
            StepResult(
                "failed",
                f"Entra ID gave no token for Azure DevOps: {exc.message}",
                transient=transient,
                object=where,
                fix=fix,
            )
        ) from exc
    remember(token.value)
    return token


async def _listed(identity: CheckedIdentity, client: GitCredentialsClient) -> list[GitCredential]:
    try:
        return await client.list(identity.workspace, identity.credential)
    except LakegateError as exc:
        status = exc.http_status if isinstance(exc, DatabricksError) else None
        transient = exc.transient
        fix = (
            f"the workspace is failing or unreachable for now {_LATER}"
            if transient
            else "let the service principal use Git credentials in the workspace (it must be "
            f"a workspace user with workspace access), {_AGAIN}"
        )
        raise _Failed(
            StepResult(
                "failed",
                "the Git Credentials API refused to list the principal's credentials "
                f"({status or 'no answer'}): {exc.message}",
                transient=transient,
                object=f"the Git Credentials API of {identity.workspace.host}",
                fix=fix,
            )
        ) from exc
