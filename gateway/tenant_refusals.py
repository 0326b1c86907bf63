"""The configured tenants refused by their own policy, as /readyz and /metrics show them.

A tenant whose policy names an unset variable or an unreadable token file is refused alone
(its requests answer 422 naming the cause); the gateway starts and serves every other tenant.
This is the composition root's view of that: one readiness check, never failing, whose detail
names each refused tenant, and which keeps ``lakegate_tenants_refused`` up to date.
"""

from __future__ import annotations

from gateway.identity.resolver import NamespaceResolver
from gateway.metrics import Metrics
from gateway.readiness import Check


def refusals_check(resolver: NamespaceResolver, metrics: Metrics) -> Check:
    """The check, which also sets the metric; call it once at start-up so the metric is there
    before the first probe."""

    async def check() -> tuple[bool, str]:
        found = await resolver.refusals()
        metrics.set_tenants_refused([(r.namespace, r.reason) for r in found])
        if not found:
            return True, "every configured tenant policy is usable"
        # A refused tenant is that tenant's problem, not the gateway's: shown, never failing.
        return True, "; ".join(r.message() for r in found)

    return check
