"""The last steps: the quotas and the webhook endpoint in force for the namespace.

They do not depend on the identity: a namespace refused an identity still learns its limits
and where its events would go. The webhook's signing secret is named by where it is held,
never shown.
"""

from __future__ import annotations

from typing import Any

from gateway.doctor.model import Step, failed, ok, skipped
from gateway.doctor.walk import Walk
from gateway.errors import LakegateError
from gateway.webhooks.guard import Guard, UrlRefused

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
    options = walk.settings.webhooks
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
    try:
        Guard.of(options.allow_networks, allow_http=options.allow_http).check_url(policy.url)
    except UrlRefused as exc:
        return failed(
            *WEBHOOK,
            obj=f"webhooks.url of '{walk.namespace}'",
            cause=f"events would never be delivered: rule {exc.rule}: {exc}",
            fix="use an https URL on a public address, or ask an operator to allow its network "
            "(webhooks.allow_networks, webhooks.allow_http)",
            **facts,
        )
    return ok(
        *WEBHOOK,
        f"events go to {policy.url}, signed with the secret from {facts['signing_secret']} "
        f"(not shown); callback_url prefixes: {prefixes}",
        **facts,
    )
