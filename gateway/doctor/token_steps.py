"""The remote half of the path: the TokenRequest, the grant at the token endpoint, and one
harmless Jobs API call (runs/list, limit 1) as the namespace's principal.

The walk fetches its own token with the kind's real ``fetch`` (``gateway.identity.kinds``),
through a token cache of its own: a check never reuses nor disturbs the tokens the gateway
serves runs with. Tokens stay in the walk; steps show their expiry, never their value.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.databricks import subject
from gateway.databricks.jobs import Workspace
from gateway.databricks.oauth import entra_token_endpoint, mask_client_id
from gateway.doctor import fixes
from gateway.doctor.held import held
from gateway.doctor.identity_steps import blocked_by
from gateway.doctor.model import Step, failed, ok, skipped
from gateway.doctor.walk import Walk
from gateway.errors import (
    DatabricksAuthError,
    DatabricksError,
    LakegateError,
    TokenEndpointError,
)
from gateway.identity import kinds
from gateway.identity.strategy import Plan
from gateway.secrets_registry import remember

TOKEN_REQUEST = ("token-request", "TokenRequest")
TOKEN = ("token", "token endpoint")
JOBS = ("jobs-api", "Jobs API call")

_FEDERATION = frozenset({kinds.SERVICE_ACCOUNT.name, kinds.POD_TOKEN.name, "env-oidc"})
_ENTRA = frozenset({kinds.AZURE_CLIENT_SECRET.name, kinds.AZURE_WORKLOAD_IDENTITY.name})


def rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _claims_of(token: str) -> dict[str, Any] | None:
    found = subject.claims(token)
    return None if found is None else {k: found.get(k) for k in ("iss", "sub", "aud", "exp")}


async def token_request_step(walk: Walk) -> Step:
    tools = walk.tools
    if (stop := blocked_by(walk, *TOKEN_REQUEST)) is not None:
        return stop
    plan = walk.plan
    assert plan is not None
    if plan.kind != kinds.SERVICE_ACCOUNT.name or plan.service_account is None:
        return skipped(*TOKEN_REQUEST, f"{_title(plan)} mints no ServiceAccount token")
    account, audience = plan.service_account, plan.audience or ""
    seconds = walk.settings.identity.service_account_token_seconds
    try:
        minted = await tools.mint(walk.namespace, account, [audience], seconds)
    except LakegateError as exc:
        return failed(
            *TOKEN_REQUEST,
            obj=f"ServiceAccount '{account}'",
            cause=exc.message,
            fix=fixes.rbac(walk.namespace),
        )
    remember(minted.value)
    tools.minted = minted
    claims = _claims_of(minted.value) or {}
    walk.subject_claims = claims
    return ok(
        *TOKEN_REQUEST,
        f"minted for ServiceAccount '{account}', audience {audience}, issuer {claims.get('iss')}, "
        f"expires {rfc3339(minted.expires_at)}",
        service_account=account,
        issuer=claims.get("iss"),
        subject=claims.get("sub"),
        audience=claims.get("aud"),
        expires_at=rfc3339(minted.expires_at),
    )


def _title(plan: Plan) -> str:
    return kinds.KINDS[plan.kind].title if plan.kind in kinds.KINDS else plan.kind


def _client(plan: Plan) -> str | None:
    return mask_client_id(plan.client_id) if plan.client_id else None


def _where(plan: Plan, namespace: str) -> str:
    if plan.secret_name:
        return f"Secret '{plan.secret_name}' of '{namespace}'"
    return "the tenant policy" if not plan.shared else "the gateway's environment"


async def _endpoint(walk: Walk, plan: Plan) -> str:
    if plan.kind in _ENTRA:
        authority = walk.settings.identity.azure_authority
        return entra_token_endpoint(authority, plan.tenant_id or "")
    return await walk.tokens.endpoint(plan.workspace.host)


def _grant(plan: Plan) -> str:
    if plan.kind in _FEDERATION:
        return "token exchange (RFC 8693)"
    if plan.kind in _ENTRA:
        return "Entra ID client credentials"
    return "client-credentials grant"


async def token_step(walk: Walk) -> Step:
    tools = walk.tools
    if (stop := blocked_by(walk, *TOKEN)) is not None:
        return stop
    plan = walk.plan
    assert plan is not None
    fetch = kinds.of(plan).fetch(plan, walk.namespace, tools)
    if plan.kind == kinds.PAT.name:
        try:
            walk.token = await fetch()
        except LakegateError as exc:
            where = _where(plan, walk.namespace)
            return failed(*TOKEN, obj=where, cause=exc.message, fix=_fix(walk, plan, exc))
        return ok(
            *TOKEN,
            f"PAT read from {_where(plan, walk.namespace)}; a PAT has no token endpoint, the "
            "Jobs API call says whether the workspace accepts it",
            grant="pat",
        )
    try:
        endpoint = await _endpoint(walk, plan)
        walk.token = await fetch()
    except LakegateError as exc:
        return failed(
            *TOKEN,
            obj=f"{_grant(plan)} for {_title(plan)} ({plan.origin})",
            cause=exc.message,
            fix=_fix(walk, plan, exc),
            client_id=_client(plan),
        )
    expires = walk.token.expires_at
    return ok(
        *TOKEN,
        f"{_grant(plan)} at {endpoint} as {_client(plan) or 'the account'}: a token that "
        f"expires {rfc3339(expires)}",
        grant=_grant(plan),
        endpoint=endpoint,
        client_id=_client(plan),
        expires_at=rfc3339(expires),
        expires_in_seconds=None if expires is None else int(expires - time.time()),
    )


def _fix(walk: Walk, plan: Plan, exc: LakegateError) -> str:
    if isinstance(exc, TokenEndpointError) and exc.transient:
        return (
            "the token endpoint is failing for now (an outage, not the set-up): check again later"
        )
    if isinstance(exc, TokenEndpointError) and plan.kind in _FEDERATION:
        return fixes.federation_policy(_client(plan), walk.subject_claims or {})
    if isinstance(exc, TokenEndpointError) and plan.kind in _ENTRA:
        claims = walk.subject_claims if plan.kind == kinds.AZURE_WORKLOAD_IDENTITY.name else None
        return fixes.entra_credential(_client(plan) or "(none)", claims)
    if isinstance(exc, TokenEndpointError):
        return fixes.oauth_secret(_where(plan, walk.namespace))
    return "correct what the cause names, then run `lakegate tenants check` again"


async def jobs_step(walk: Walk) -> Step:
    if (stop := blocked_by(walk, *JOBS)) is not None:
        return stop
    plan, token = walk.plan, walk.token
    assert plan is not None
    assert token is not None
    listed = walk.settings.workspaces[plan.workspace.name]
    workspace = Workspace.from_settings(listed)
    try:
        page = await walk.jobs.list(
            workspace, held(plan, walk.namespace, walk.tools, token), limit=1
        )
    except TokenEndpointError as exc:
        return failed(
            *JOBS,
            obj=f"the Azure management token of {_title(plan)} ({plan.origin})",
            cause=exc.message,
            fix=_fix(walk, plan, exc),
        )
    except DatabricksError as exc:
        return failed(
            *JOBS,
            obj=f"workspace {plan.workspace.name} ({plan.workspace.host})",
            cause=f"runs/list answered {exc.http_status or 'no answer'}: {exc.message}",
            fix=_jobs_fix(walk, plan, exc),
            status=exc.http_status,
        )
    except LakegateError as exc:
        where = f"workspace {plan.workspace.name} ({plan.workspace.host})"
        return failed(*JOBS, obj=where, cause=exc.message, fix=_fix(walk, plan, exc))
    return ok(
        *JOBS,
        f"runs/list (limit 1) on {plan.workspace.host} answered as this principal "
        f"({len(page.runs)} run(s) shown)",
        endpoint=workspace.jobs_url("runs/list"),
    )


def _jobs_fix(walk: Walk, plan: Plan, exc: DatabricksError) -> str:
    if isinstance(exc, DatabricksAuthError):
        return fixes.jobs_refused(plan.kind, _where(plan, walk.namespace), refused_token=True)
    if exc.http_status == 403:
        return fixes.jobs_refused(plan.kind, _where(plan, walk.namespace), refused_token=False)
    return "the workspace is failing or unreachable for now: check again later"


STEP_NAMES: Sequence[tuple[str, str]] = (TOKEN_REQUEST, TOKEN, JOBS)
