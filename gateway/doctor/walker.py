"""The tenant doctor: walks one namespace's whole path and reports each step.

``STEPS`` is the path, in order, one function per step (``gateway.doctor.walk.StepFunction``):
the tenant policy, the identity rule, the credential source, the TokenRequest, the token
endpoint, a Jobs API call, the Git credential (issue 17), the quotas and the webhook
endpoint. A new kind of step is one more function in the tuple. A failed step skips the
identity steps after it (the Git credential is one); the quotas and the webhook are walked
whatever happened before.

The decision of which identity a namespace gets is the resolver's own
(``NamespaceResolver.explain``); the walk then fetches a token with the kind's real fetch,
through a token cache of its own, and calls runs/list with it, so a check neither reuses nor
disturbs the tokens runs are served with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import aiohttp

from gateway.databricks.git_credentials import GitCredentialsClient
from gateway.databricks.jobs import JobsClient
from gateway.databricks.oauth import TokenClient
from gateway.doctor.git_step import git_credentials_step
from gateway.doctor.identity_steps import identity_step, policy_step, source_step
from gateway.doctor.model import Report, Tenant
from gateway.doctor.policy_steps import quota_step, webhook_step
from gateway.doctor.token_steps import jobs_step, token_request_step, token_step
from gateway.doctor.walk import QuotaSource, Steps, Walk, WalkTools
from gateway.identity.builders import Kube
from gateway.identity.cache import TokenCache
from gateway.identity.explain import Explanation
from gateway.settings import Settings
from gateway.singleflight import TtlCache

STEPS: Steps = (
    policy_step,
    identity_step,
    source_step,
    token_request_step,
    token_step,
    jobs_step,
    git_credentials_step,
    quota_step,
    webhook_step,
)

# Bounds the namespaces being walked at once (each entry lives only while it walks).
_MAX_WALKS = 10_000
# A walk fetches one token (two with a management token): a cache that small is plenty.
_WALK_CACHE_ENTRIES = 4


class Explainer(Protocol):
    """What the doctor asks of the resolver (``gateway.identity.resolver.NamespaceResolver``)."""

    @property
    def settings(self) -> Settings: ...

    async def explain(self, namespace: str) -> Explanation: ...


class Doctor:
    def __init__(
        self,
        resolver: Explainer,
        session: aiohttp.ClientSession,
        *,
        kube: Kube | None,
        discovered: Callable[[], Iterable[str]] = tuple,
        tokens: TokenClient | None = None,
        steps: Steps = STEPS,
    ) -> None:
        self._resolver = resolver
        self._session = session
        self._kube = kube
        self._discovered = discovered
        self._tokens = tokens if tokens is not None else TokenClient(session)
        self._jobs = JobsClient.from_settings(session, resolver.settings.databricks)
        self._git = GitCredentialsClient.from_settings(session, resolver.settings.databricks)
        self._steps = steps
        self._walking: TtlCache[str, Report] = TtlCache(_MAX_WALKS, name="doctor-walks")

    async def check(self, namespace: str, quota: QuotaSource | None = None) -> Report:
        """Every step of the namespace's path, in order. Checks of one namespace asked for
        while one is walking share its report: a burst of checks costs one token fetch."""

        async def load() -> tuple[Report, float]:
            # Kept for no time at all: the next check, after a fix, walks afresh.
            return await self._walk(namespace, quota), 0.0

        return await self._walking.get(namespace, load)

    async def _walk(self, namespace: str, quota: QuotaSource | None) -> Report:
        settings = self._resolver.settings
        cache = TokenCache(max_entries=_WALK_CACHE_ENTRIES)
        tools = WalkTools(self._session, cache, settings.identity, self._kube, tokens=self._tokens)
        try:
            walk = Walk(
                namespace,
                settings,
                await self._resolver.explain(namespace),
                tools,
                self._jobs,
                self._git,
                self._kube,
                quota,
            )
            for step in self._steps:
                walk.steps.append(await step(walk))
        finally:
            await cache.aclose()
        return Report(namespace, tuple(walk.steps))

    async def tenants(
        self, allowed: Callable[[str], Awaitable[bool]] | None = None
    ) -> list[Tenant]:
        """Every configured or discovered namespace (those ``allowed``, when given; the others
        are not even read), its identity kind and state; the rules only (they read
        Kubernetes, never mint or fetch a token)."""
        settings = self._resolver.settings
        configured = set(settings.tenants.namespaces)
        watched = set(settings.kubernetes.namespaces)
        discovered = set(self._discovered())
        out = []
        for namespace in sorted(configured | watched | discovered):
            if allowed is not None and not await allowed(namespace):
                continue
            known = [
                label
                for label, names in (
                    ("tenants file", configured),
                    ("watched", watched),
                    ("labelled ServiceAccount", discovered),
                )
                if namespace in names
            ]
            explanation = await self._resolver.explain(namespace)
            plan, refusal = explanation.plan, explanation.refusal
            out.append(
                Tenant(
                    namespace,
                    tuple(known),
                    plan.kind if plan else None,
                    plan.origin if plan else explanation.decided_by,
                    "ok" if plan is not None else "refused",
                    None if refusal is None else refusal.message,
                )
            )
        return out

    async def aclose(self) -> None:
        await self._walking.aclose()
        await self._tokens.aclose()
