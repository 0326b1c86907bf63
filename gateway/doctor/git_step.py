"""The Git credential step (issue 17): what lakegate would do for the namespace's Azure
DevOps runs, checked by ``gateway.gitcreds.check`` with what the walk already holds.

The Git Credentials API is called as the principal with the token the token step fetched
(as the Jobs API call was), and the Entra token for Azure DevOps is asked with the walk's own
tools, so the check neither reuses nor disturbs what runs are served with. It writes nothing.
Skipped when the namespace's ``git_credentials`` is off, and after a failed identity step.
"""

from __future__ import annotations

from gateway.databricks.jobs import Workspace
from gateway.doctor.held import held
from gateway.doctor.identity_steps import blocked_by
from gateway.doctor.model import Step, failed, ok, skipped
from gateway.doctor.walk import Walk
from gateway.gitcreds.check import CheckedIdentity, git_credential_step

GIT_CREDENTIALS = ("git-credentials", "Git credential")


async def git_credentials_step(walk: Walk) -> Step:
    if (stop := blocked_by(walk, *GIT_CREDENTIALS)) is not None:
        return stop
    plan, token = walk.plan, walk.token
    assert plan is not None
    assert token is not None
    workspace = Workspace.from_settings(walk.settings.workspaces[plan.workspace.name])
    credential = held(plan, walk.namespace, walk.tools, token)
    checked = CheckedIdentity(plan.kind, plan.origin, workspace, credential)
    result = await git_credential_step(
        walk.namespace, walk.settings.tenants, checked, walk.git_credentials
    )
    if result.status == "skipped":
        return skipped(*GIT_CREDENTIALS, result.detail)
    if result.status == "failed":
        return failed(
            *GIT_CREDENTIALS,
            obj=result.object or f"the Git credential of '{walk.namespace}'",
            cause=result.detail,
            fix=result.fix or "correct what the cause names",
            transient=result.transient,
        )
    return ok(*GIT_CREDENTIALS, result.detail, credential_id=result.credential_id)
