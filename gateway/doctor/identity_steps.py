"""The first steps of the path: the tenant policy, the rule that chose the identity, and the
Secret, ServiceAccount or file the identity is read from. Nothing here mints or sends a token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.databricks import subject
from gateway.databricks.oauth import mask_client_id
from gateway.doctor import fixes
from gateway.doctor.model import Step, failed, ok, skipped
from gateway.doctor.walk import Walk
from gateway.errors import LakegateError
from gateway.identity import kinds
from gateway.identity.strategy import Plan
from gateway.kube import KubeNotFound

POLICY = ("policy", "tenant policy")
IDENTITY = ("identity", "identity rule")
SOURCE = ("source", "credential source")

# The keys a Secret named by a plan must hold for its kind (the client id only when the plan
# does not give it).
_NEEDED = {
    kinds.PAT.name: ("token",),
    kinds.OAUTH_M2M.name: ("client_id", "client_secret"),
    kinds.AZURE_CLIENT_SECRET.name: ("client_secret",),
}


def blocked_by(walk: Walk, name: str, title: str) -> Step | None:
    found = walk.blocked()
    if found is None:
        return None
    return skipped(name, title, f"not reached: the {found.title} step failed")


async def policy_step(walk: Walk) -> Step:
    """A tenant whose policy is refused now (unset variable, unreadable file) fails here first."""
    namespace, explanation = walk.namespace, walk.explanation
    policy = walk.settings.tenants.policy(namespace)
    if policy is None or policy.identity is None:
        return skipped(*POLICY, f"the tenants file names no identity for '{namespace}'")
    refused = explanation.policy_refusals
    if refused:
        key, _, rest = refused[0].detail.partition(": ")
        cause, _, fix = rest.partition("; ")
        return failed(
            *POLICY,
            obj=key,
            cause=f"the tenant policy is refused: {cause}",
            fix=fix or "correct the tenant policy",
            reason=refused[0].reason,
            refusals=[r.detail for r in refused],
        )
    return ok(
        *POLICY,
        f"tenants.namespaces.{namespace}.identity: type {policy.identity.type}, usable here",
    )


def _rules(walk: Walk) -> list[dict[str, str]]:
    return [
        {"rule": r.name, "outcome": r.outcome, "detail": r.detail} for r in walk.explanation.rules
    ]


async def identity_step(walk: Walk) -> Step:
    if (stop := blocked_by(walk, *IDENTITY)) is not None:
        return stop
    explanation, plan = walk.explanation, walk.plan
    decided = explanation.decided_by
    if plan is not None:
        kind = kinds.of(plan) if plan.kind in kinds.KINDS else None
        return ok(
            *IDENTITY,
            f"{decided} chose {kind.title if kind else plan.kind} ({plan.origin}) "
            f"on workspace {plan.workspace.name}",
            rule=decided,
            kind=plan.kind,
            origin=plan.origin,
            workspace=plan.workspace.name,
            rules=_rules(walk),
        )
    refusal = explanation.refusal
    assert refusal is not None
    context: dict[str, Any] = {
        "labelled": [a.name for a in explanation.accounts],
        "workspaces": sorted(walk.settings.workspaces),
    }
    return failed(
        *IDENTITY,
        obj=getattr(refusal, "source", None) or decided,
        cause=refusal.message,
        fix=fixes.refusal(refusal, walk.namespace, context),
        rule=decided,
        rules=_rules(walk),
    )


async def source_step(walk: Walk) -> Step:
    if (stop := blocked_by(walk, *SOURCE)) is not None:
        return stop
    plan = walk.plan
    assert plan is not None
    if plan.service_account is not None:
        return _account_step(walk, plan)
    if plan.secret_name is not None:
        return await _secret_step(walk, plan)
    if plan.token_file is not None:
        return await _file_step(walk, plan)
    where = "the gateway's environment" if plan.shared else "the tenants file or its variable"
    return ok(*SOURCE, f"the credential is given by {where} (value not shown)", origin=plan.origin)


def _account_step(walk: Walk, plan: Plan) -> Step:
    name = plan.service_account
    seen = next((a for a in walk.explanation.accounts if a.name == name), None)
    facts: dict[str, Any] = {
        "service_account": name,
        "client_id": mask_client_id(plan.client_id) if plan.client_id else None,
        "audience": plan.audience,
    }
    if seen is not None:
        facts |= {"labels": list(seen.labels), "workspace_annotation": seen.workspace}
    return ok(
        *SOURCE,
        f"ServiceAccount '{name}': client id {facts['client_id'] or '(none: account-wide)'}, "
        f"audience {plan.audience}",
        **facts,
    )


async def _secret_step(walk: Walk, plan: Plan) -> Step:
    name, namespace = plan.secret_name, walk.namespace
    assert name is not None
    obj = f"Secret '{name}' in '{namespace}'"
    if walk.kube is None:
        return failed(
            *SOURCE,
            obj=obj,
            cause="the identity is held in a Secret but the Kubernetes API is off",
            fix="set kubernetes.mode in gateway.yaml, or give the secret another way",
        )
    try:
        keys = sorted(await walk.kube.read_secret(namespace, name))
    except KubeNotFound:
        return failed(
            *SOURCE,
            obj=obj,
            cause=f"Secret '{name}' does not exist in '{namespace}'",
            fix=f"create it with key(s) {', '.join(_needed(plan))}, one file per key: kubectl "
            f"create secret generic {name} -n {namespace} --from-file=<key>=<file holding "
            "its value>",
        )
    except LakegateError as exc:
        return failed(*SOURCE, obj=obj, cause=exc.message, fix=fixes.rbac(namespace))
    missing = [k for k in _needed(plan) if k not in keys]
    if missing:
        return failed(
            *SOURCE,
            obj=obj,
            cause=f"Secret '{name}' holds keys {', '.join(keys) or '(none)'}; "
            f"{plan.kind} needs {', '.join(missing)}",
            fix=f"add key(s) {', '.join(missing)} to Secret '{name}' of '{namespace}'",
            keys=keys,
        )
    return ok(
        *SOURCE, f"Secret '{name}' read: keys {', '.join(keys)} (values not shown)", keys=keys
    )


def _needed(plan: Plan) -> tuple[str, ...]:
    needed = _NEEDED.get(plan.kind, ())
    return tuple(k for k in needed if not (k == "client_id" and plan.client_id))


async def _file_step(walk: Walk, plan: Plan) -> Step:
    paths = [p for p in (plan.token_file, *plan.token_fallbacks) if p]
    found = await asyncio.to_thread(_first_readable, paths)
    if found is None:
        return failed(
            *SOURCE,
            obj=f"token file {paths[0]}",
            cause=f"none of {', '.join(paths)} exists or can be read by the gateway",
            fix="mount the projected token there, or correct token_file in the tenant policy",
        )
    path, text = found
    claims = subject.claims(text.strip())
    if claims is None:
        return failed(
            *SOURCE,
            obj=f"token file {path}",
            cause=f"{path} holds {subject.not_a_jwt(text.strip())}",
            fix="the file must hold a projected ServiceAccount token (an OIDC JWT)",
        )
    walk.subject_claims = {k: claims.get(k) for k in ("iss", "sub", "aud", "exp")}
    return ok(
        *SOURCE,
        f"token file {path}: a JWT from {claims.get('iss')} for {claims.get('sub')}",
        path=path,
        issuer=claims.get("iss"),
        subject=claims.get("sub"),
        audience=claims.get("aud"),
    )


def _first_readable(paths: list[str]) -> tuple[str, str] | None:
    for path in paths:
        try:
            return path, Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return None
