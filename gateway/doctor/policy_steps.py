"""The last steps: the quotas and the webhook endpoint in force for the namespace.

They do not depend on the identity: a namespace refused an identity still learns its limits
and where its events would go. The webhook's signing secret is named by where it is held,
never shown; a Secret holding it is read for its key names, so a missing one fails here
rather than at the first delivery. (The URL itself passed the guard when the settings were
loaded.)
"""

from __future__ import annotations

from typing import Any

from gateway.doctor.model import Step, failed, ok, skipped
from gateway.doctor.walk import Walk
from gateway.errors import LakegateError
from gateway.kube import KubeNotFound
from gateway.webhooks.keys import SECRET_KEY

QUOTAS = ("quotas", "quotas")
WEBHOOK = ("webhook", "webhook endpoint")


async def quota_step(walk: Walk) -> Step:
    namespace = walk.namespace
    if walk.quota is None:
        limits: dict[str, Any] = walk.settings.tenants.quotas(namespace).model_dump(mode="json")
        usage: dict[str, Any] = {}
        paused, draining = limits.get("paused"), limits.get("draining")
    else:
        try:
            report = await walk.quota.report(namespace)
        except LakegateError as exc:
            return failed(
                *QUOTAS, obj="the ledger", cause=exc.message, fix="check the gateway's /readyz"
            )
        limits, usage = report["limits"], report["usage"]
        paused, draining = report.get("paused"), report.get("draining")
    state = "open"
    if paused or draining:
        state = "paused: new runs wait" if paused else "draining: new runs are refused"
    return ok(
        *QUOTAS,
        f"{state}; active {usage.get('active', '-')} of {limits.get('max_active_runs')}, queued "
        f"{usage.get('queued', '-')} of {limits.get('max_queued_runs')}, "
        f"{limits.get('submissions_per_minute')} submissions a minute "
        f"(burst {limits.get('burst')})",
        limits=limits,
        usage=usage,
    )


async def _signing_secret_missing(walk: Walk) -> str | None:
    """Why the namespace's signing Secret cannot sign (its key names only are looked at)."""
    policy = walk.settings.tenants.webhooks(walk.namespace)
    assert policy.secret is not None
    name = policy.secret.name
    if walk.kube is None:
        return f"Secret '{name}' needs the Kubernetes API, which is off"
    try:
        keys = await walk.kube.read_secret(walk.namespace, name)
    except KubeNotFound:
        return f"Secret '{name}' does not exist in '{walk.namespace}'"
    except LakegateError as exc:
        return exc.message
    return None if SECRET_KEY in keys else f"Secret '{name}' has no key '{SECRET_KEY}'"


def _secret_source(walk: Walk) -> str:
    policy = walk.settings.tenants.webhooks(walk.namespace)
    if policy.secret is not None:
        return f"Secret '{policy.secret.name}'"
    if policy.secret_env is not None:
        return f"environment {policy.secret_env}"
    if policy.secret_value is not None:
        return "the tenants file (inline)"
    return "the gateway's webhooks settings"


async def webhook_step(walk: Walk) -> Step:
    policy = walk.settings.tenants.webhooks(walk.namespace)
    facts: dict[str, Any] = {
        "url": policy.url,
        "allowed_url_prefixes": list(policy.allowed_url_prefixes),
        "state_changes": policy.state_changes,
        "signing_secret": _secret_source(walk),
    }
    prefixes = ", ".join(policy.allowed_url_prefixes) or "none"
    if policy.url is None:
        return skipped(
            *WEBHOOK,
            f"no default endpoint; a run's callback_url may start with: {prefixes}",
        )
    if policy.secret is not None and (missing := await _signing_secret_missing(walk)) is not None:
        return failed(
            *WEBHOOK,
            obj=f"Secret '{policy.secret.name}' in '{walk.namespace}'",
            cause=f"events would never be signed: {missing}",
            fix=f"kubectl create secret generic {policy.secret.name} -n {walk.namespace} "
            "--from-literal=secret=<the signing secret your receiver checks>",
            **facts,
        )
    return ok(
        *WEBHOOK,
        f"events go to {policy.url}, signed with the secret from {facts['signing_secret']} "
        f"(not shown); callback_url prefixes: {prefixes}",
        **facts,
    )
